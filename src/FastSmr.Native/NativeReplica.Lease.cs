using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;

namespace FastSmr.Native;

// Reads under the leader lease (thesis 6.4): the barrier, the check after the query, and publishing the lease with the
// commit index it covers.
public sealed partial class NativeReplica
{
    private void PublishLease(RaftNode n)
    {
        var lease = n.LeaseUntil;
        var ownTerm = n.Role == Role.Leader && n.TermAt(n.CommitIndex) == n.Term ? 1 : 0;
        var now = NowUs();
        bool wake;
        lock (readGate)
        {
            // Readers wait while there is no usable lease: wake them when one appears (new, or renewed after it lapsed),
            // and when the term or the own-term commitment changes.
            wake = (lease > now && leaseUntilUs <= now) || leaseTerm != n.Term.Value || ownTermCommitted != ownTerm;
            Volatile.Write(ref leaseCommitIndex, n.CommitIndex.Value); // before the flags that let a reader use it
            leaseTerm = n.Term.Value;
            ownTermCommitted = ownTerm;
            leaseUntilUs = lease;
        }

        if (wake)
        {
            WakeReaders();
        }
    }

    private void WakeReaders()
    {
        TaskCompletionSource woken;
        lock (readGate)
        {
            woken = readWaiters;
            readWaiters = NewReadWaiters();
        }

        woken.TrySetResult();
    }

    /// <summary>
    /// The signal lease readers wait on. Production completes their continuations on the thread pool, never inline on
    /// the thread driving the core; under a simulator's scheduler inline, as a wait on it would else leave its one thread.
    /// </summary>
    private TaskCompletionSource NewReadWaiters() =>
        new(ResumeOnCapturedContext ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// The index a linearizable read must wait for (the commit index, under a valid lease), or null when this replica
    /// cannot serve the read: see <see cref="IReplicationBackend.ReadBarrierAsync"/>.
    /// </summary>
    public async ValueTask<LogIndex?> ReadBarrierAsync(CancellationToken token)
    {
        // A lease read (thesis §6.4): while a majority acknowledged a heartbeat round sent less than a lease ago, no other
        // leader can exist, so the commit index here is current. Only after an entry of this term is committed.
        while (true)
        {
            Task changed;
            long commit;
            bool valid;
            lock (readGate)
            {
                changed = readWaiters.Task;
                valid = LeaseValidLocked(Leadership.Term.Value);
                commit = leaseCommitIndex; // published together with the lease, so never older than the lease's term
            }

            var view = Leadership;
            if (view.Role != ReplicaRole.Leader || stopRequested)
            {
                return null;
            }

            if (valid)
            {
                return new LogIndex(commit);
            }

            // No lease yet (a new leader, or a round missed): the next acknowledged round brings it back.
            await changed.WaitAsync(token).ConfigureAwait(ResumeOnCapturedContext);
        }
    }

    /// <inheritdoc />
    public bool ReadStillValid(Term term) => LeaseValid(term.Value);

    /// <summary>
    /// Whether a lease read started under <paramref name="term"/> may still be answered: checked by the engine after the
    /// query ran, so a pause between the barrier and the query cannot make the answer stale.
    /// </summary>
    public bool LeaseValid(long term)
    {
        lock (readGate)
        {
            return LeaseValidLocked(term);
        }
    }

    private bool LeaseValidLocked(long term) =>
        !stopRequested && leaseTerm == term && (ownTermCommitted == 1 || Bug == NativeBug.LeaseBeforeCommitIndex) && NowUs() < leaseUntilUs;
}
