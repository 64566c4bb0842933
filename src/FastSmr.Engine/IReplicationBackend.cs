using FastSmr.Core;

namespace FastSmr.Engine;

/// <summary>
/// The seam between the replica runtime and a consensus implementation. A back-end orders opaque batches and
/// reports what is committed as (index, term, bytes), in log order, to its <see cref="IReplicationHost"/>; it
/// reports leadership changes, offers a read barrier, and calls the host's snapshot hooks. Everything above it
/// (group commit, the pending-request table, apply, outputs, reads) belongs to <see cref="ReplicaEngine"/>.
/// </summary>
/// <remarks>
/// Implementations: <c>FastSmr.DotNext</c> (stock DotNext RaftCluster + WriteAheadLog) and <c>FastSmr.Native</c>
/// (FastSmr.Raft + FastSmr.Log + the peer transport).
/// Only the composition root (server, CLI, tests) chooses between them.
/// </remarks>
public interface IReplicationBackend : IAsyncDisposable
{
    /// <summary>Starts the back-end; committed entries flow to <paramref name="host"/> from now on.</summary>
    Task StartAsync(IReplicationHost host, CancellationToken token);

    /// <summary>Stops the back-end. No host call starts after this returns.</summary>
    Task StopAsync(CancellationToken token);

    /// <summary>The current leadership view (role, term, leader id).</summary>
    LeadershipInfo Leadership { get; }

    /// <summary>The highest index this replica knows to be committed.</summary>
    LogIndex CommitIndex { get; }

    /// <summary>
    /// Appends <paramref name="batch"/> as leader and waits until it is committed, or until it is known that it will
    /// not be (leadership lost), or the token is cancelled. Cancelling never un-proposes: an entry that was appended may
    /// still commit later, and the host sees it through <see cref="IReplicationHost.ApplyAsync"/> like any other.
    /// </summary>
    /// <param name="batch">The whole entry; the back-end copies it before the returned task completes, or does not use it after.</param>
    /// <param name="term">The term the engine believes this replica leads in. The back-end appends only if it still leads in
    /// exactly this term (otherwise <see cref="ProposeOutcome.NotLeader"/>), so the engine knows the term the entry will carry
    /// before it can possibly be applied.</param>
    /// <param name="token">Cancels the wait (not the proposal).</param>
    ValueTask<ProposeResult> ProposeAsync(ReadOnlyMemory<byte> batch, Term term, CancellationToken token);

    /// <summary>
    /// A linearizable read barrier: confirms that this replica still leads and returns the commit index as of the call.
    /// A read that waits until the applied index reaches it and then runs is linearizable (Raft thesis §6.4).
    /// </summary>
    /// <returns>The index to wait for, or null when this replica cannot serve the read (not the leader).</returns>
    ValueTask<LogIndex?> ReadBarrierAsync(CancellationToken token);

    /// <summary>
    /// Asked after a linearizable read has run, with the term its barrier was taken in: false when the answer must be
    /// thrown away. A back-end whose barrier is a lease (docs/architecture.md, "The hot path of a read") checks the
    /// lease here, so that a pause
    /// between the barrier and the query (GC, SIGSTOP) cannot return a stale answer; a back-end whose barrier is a
    /// round of messages sent after the read started has nothing left to check.
    /// </summary>
    bool ReadStillValid(Term term) => true;

    /// <summary>
    /// Completes, with the cause, when the back-end has stopped itself for good (its storage failed): the replica no
    /// longer takes part, and the process should stop and report it so that a supervisor restarts it once the cause is
    /// fixed. Never completes for a back-end that cannot fail that way.
    /// </summary>
    Task<Exception> Failure => BackendFailure.Never;
}

/// <summary>Helpers for <see cref="IReplicationBackend.Failure"/>.</summary>
public static class BackendFailure
{
    /// <summary>A task that never completes: the failure of a back-end that does not fail on its own.</summary>
    public static Task<Exception> Never { get; } = new TaskCompletionSource<Exception>().Task;
}
