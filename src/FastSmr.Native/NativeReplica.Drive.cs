using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;

namespace FastSmr.Native;

// Running the core: who drives it (Kick, Drive, the ticker), stepping messages, proposing, handling each Ready in its order.
public sealed partial class NativeReplica
{
    /// <summary>
    /// New work is queued. Inline (the default), the calling thread — a peer receive, a proposal — runs the core itself
    /// if nobody else is: on two cores a hand-off to another thread costs a wake-up (~35 µs each way on this machine
    /// kind, native-notes/latency.md), the largest item on the latency path after fdatasync. Otherwise the dedicated
    /// replication thread is woken.
    /// </summary>
    public void Kick()
    {
        if (!options.InlineDrive)
        {
            wakeDriver();
        }
        else
        {
            TryDrive();
        }
    }

    /// <summary>Runs the core (ticking it when due) unless another thread is running it; that thread then sees the work.</summary>
    public void TryDrive()
    {
        Point("take the core");
        if (Interlocked.CompareExchange(ref driving, 1, 0) == 0)
        {
            Drive();
        }
    }

    /// <summary>Runs the core while there is work; the caller holds <see cref="driving"/>, which this releases.</summary>
    private void Drive()
    {
        Interlocked.Increment(ref active);
        try
        {
            DriveRounds();
        }
        finally
        {
            Interlocked.Decrement(ref active);
        }
    }

    private void DriveRounds()
    {
        while (true)
        {
            (LogIndex Index, Term Term) toSync;
            try
            {
                if (!stopRequested)
                {
                    DriveOnce(node!);
                }

                toSync = flushTarget;
                flushTarget = default;
                Point("round done");
            }
#pragma warning disable CA1031 // Anything escaping here stops this replica with the reason logged; a crash would lose the reason.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Volatile.Write(ref driving, 0);
                Fail(e);
                return;
            }

            // Released before syncing and applying, so the core keeps running meanwhile (another thread steps the
            // acknowledgements that arrive during this fdatasync); then checked again, so work queued by a thread that
            // found the core busy is never left behind. One sync covers every Ready this round handled, and whatever
            // arrives during it queues for the next (group commit without a timer).
            var sawNoWork = Bug == NativeBug.CheckThenLetGo && toSync.Index == LogIndex.Zero && NoQueuedWork();
            Point("queues looked at");
            Interlocked.Exchange(ref driving, 0); // a full fence: the queue checks below must not move above it
            Point("core let go");
            if (toSync.Index > LogIndex.Zero && !stopRequested)
            {
                try
                {
                    storage.Flush(toSync.Index);
                }
#pragma warning disable CA1031 // A failed fdatasync is fatal to this replica (it stops rather than acknowledge what it may not hold).
                catch (Exception e)
#pragma warning restore CA1031
                {
                    Fail(e);
                    return;
                }

                persistedReports.Enqueue(toSync);
                Point("synced");
            }

            KickApply();
            if (Bug == NativeBug.LostWakeUp)
            {
                return;
            }

            Point("re-check");

            if (stopRequested || sawNoWork || NoQueuedWork() || Interlocked.CompareExchange(ref driving, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private bool NoQueuedWork() => inbound.IsEmpty && proposals.IsEmpty && compactions.IsEmpty && persistedReports.IsEmpty;

    private void DriveOnce(RaftNode n)
    {
        var now = NowUs();
        while (persistedReports.TryDequeue(out var synced))
        {
            n.Persisted(synced.Index, synced.Term);
            CheckCaughtUp(n);
        }

        var taken = 0;
        while (taken < InboundPerRound && inbound.TryDequeue(out var item))
        {
            StepInbound(n, item);
            taken++;
        }

        while (proposals.TryDequeue(out var waiter))
        {
            Propose(n, waiter);
        }

        while (compactions.TryDequeue(out var snapshot))
        {
            Compact(n, snapshot);
        }

        if (now >= nextTick)
        {
            if (fresh && (n.Term.Value != 0 || n.LastIndex.Value != 0))
            {
                Volatile.Write(ref fresh, false); // it has state now: its hellos say so
            }
            else if (fresh && rejoining)
            {
                bus!.EnsureConnected(); // a replica that sends nothing must still say hello, or no new cluster starts
            }

            if (!rejoining || n.Role == Role.Leader)
            {
                n.Tick(now);
            }

            nextTick = now + TickUs;
        }

        while (n.HasReady)
        {
            HandleReady(n, n.GetReady());
        }

        DropStagedSnapshots(n.CommitIndex.Value);
        Publish(n);
    }

    /// <summary>Logs messages the core dropped as impossible (a forger or a broken peer), at most once a second.</summary>
    private void ReportDropped(RaftNode n, Message last)
    {
        var now = NowUs();
        if (droppedReported != 0 && now - droppedReportedAtUs < DropReportIntervalUs)
        {
            return;
        }

        NativeLog.MessagesDropped(logger, options.ReplicaId, n.DroppedMessages - droppedReported, last.From, n.LastDropReason ?? "?");
        droppedReported = n.DroppedMessages;
        droppedReportedAtUs = now;
    }

    private void StepInbound(RaftNode n, Inbound item)
    {
        var message = item.Message;
        if (message.Type == MessageType.Snapshot)
        {
            if (item.StagedSnapshot is null)
            {
                return; // a snapshot's state travels on its own connection; metadata alone cannot be installed
            }

            if (stagedSnapshots.Remove(message.Index.Value, out var older))
            {
                storage.DeleteSnapshot(older);
            }

            stagedSnapshots[message.Index.Value] = item.StagedSnapshot;
        }

        if (rejoining)
        {
            if (message.Type is MessageType.PreVote or MessageType.Vote)
            {
                return; // a non-voter until caught up: the request goes unanswered, as if lost
            }

            if (message.Type is MessageType.Append or MessageType.Heartbeat && message.Term >= n.Term)
            {
                // The target is the first commit index a leader announces, not the latest: under load the latest runs
                // ahead of what this replica has synced at every check, and it would never catch up (decision 103).
                if (rejoinLeaderCommit == 0)
                {
                    rejoinLeaderCommit = message.Commit.Value;
                }
            }
        }

        n.Step(message, item.ReceivedUs);
        if (
            message.Type == MessageType.Snapshot
            && n.PendingSnapshotIndex != message.Index
            && stagedSnapshots.Remove(message.Index.Value, out var untaken)
        )
        {
            storage.DeleteSnapshot(untaken); // the core did not take it (stale, or not this term's leader's): nothing will
        }

        if (n.DroppedMessages != droppedSeen)
        {
            Volatile.Write(ref droppedSeen, n.DroppedMessages);
            ReportDropped(n, message);
        }

        CheckCaughtUp(n);
    }

    /// <summary>
    /// A rejoining replica that holds, synced and committed, what its leader had committed when it first heard from it,
    /// votes again.
    /// </summary>
    private void CheckCaughtUp(RaftNode n)
    {
        if (rejoining && rejoinLeaderCommit > 0 && n.CommitIndex.Value >= rejoinLeaderCommit && n.StableIndex.Value >= rejoinLeaderCommit)
        {
            storage.StoreBootId(bootId); // caught up: from now on this replica's acknowledgements are its own again
            Volatile.Write(ref rejoining, false);
            NativeLog.Rejoined(logger, options.ReplicaId);
        }
    }

    private void Propose(RaftNode n, ProposalWaiter waiter)
    {
        if (n.Role != Role.Leader || n.Term.Value != waiter.Term)
        {
            waiter.TryComplete(ProposeOutcome.NotLeader);
            return;
        }

        var result = n.Propose(waiter.Data);
        if (result.Status != ProposeStatus.Ok)
        {
            waiter.TryComplete(ProposeOutcome.NotLeader); // not appended (a transfer in progress, or the uncommitted bound)
            return;
        }

        waiter.Index = result.Index.Value;
        waiting.Enqueue(waiter);
    }

    private void HandleReady(RaftNode n, Ready ready)
    {
        if (ready.Snapshot is { } snapshot)
        {
            InstallSnapshot(snapshot);
        }

        if (ready.HardStateChanged)
        {
            // Term and vote are durable before any message that depends on them leaves. The commit index goes along
            // only as far as the log is durable here (in memory mode that may be less than the core's).
            var hard = ready.HardState;
            var commit = LogIndex.Max(storage.Metadata.CommitIndex, LogIndex.Min(hard.Commit, storage.DurableIndex));
            storage.SaveState(hard.Term, hard.Vote, commit);
        }

        if (ready.Entries.Count > 0)
        {
            AppendEntries(n, ready.Entries);
            if (Bug != NativeBug.None)
            {
                InjectAppendBug(n, ready.Entries);
            }
        }

        PublishLease(n); // before the messages: a transfer's TimeoutNow must not leave while the old lease still shows
        var messages = ready.Messages;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Type == MessageType.Snapshot)
            {
                if (currentSnapshot is { } current && current.Index == message.Index.Value)
                {
                    bus!.SendSnapshot(message, current);
                }
            }
            else
            {
                bus!.Send(message);
            }
        }

        bus!.Flush();
        if (ready.Entries.Count > 0 && options.Durability == DurabilityMode.Durable)
        {
            // Synced by this thread once it has let go of the core (see Drive): the messages are on their way, so the
            // fdatasync runs in parallel with the followers' work (thesis §10.2.1), and another thread can meanwhile step
            // acknowledgements and commit earlier entries.
            var last = ready.Entries[^1];
            flushTarget = (last.Index, last.Term);
        }

        var committed = ready.CommittedEntries;
        if (committed.Count > 0)
        {
            for (var i = 0; i < committed.Count; i++)
            {
                applyQueue.Enqueue(new ApplyItem(committed[i], null));
            }

            CompleteWaiters(committed); // applied by whoever runs KickApply next (see Drive)
        }

        n.Advance(ready);
    }

    private void AppendEntries(RaftNode n, IReadOnlyList<Entry> entries)
    {
        var first = entries[0].Index;
        if (first <= storage.LastIndex)
        {
            storage.TruncateSuffix(first); // durable when it returns
        }

        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            var index = storage.Append(entry.Term, entry.Data.Span, entry.Type);
            if (index != entry.Index)
            {
                throw new InvalidOperationException("the log appended entry " + entry.Index + " at index " + index);
            }
        }

        if (options.Durability == DurabilityMode.Memory)
        {
            var last = entries[^1];
            storage.Submit(); // in the kernel: survives this process, which is what memory mode promises
            n.Persisted(last.Index, last.Term);
        }
    }

    private void InjectAppendBug(RaftNode n, IReadOnlyList<Entry> entries)
    {
        if (Bug == NativeBug.AcknowledgeBeforeFsync && options.Durability == DurabilityMode.Durable)
        {
            n.Persisted(entries[^1].Index, entries[^1].Term);
        }
        else if (Bug == NativeBug.ApplyPastCommit)
        {
            foreach (var entry in entries)
            {
                applyQueue.Enqueue(new ApplyItem(entry, null));
            }
        }
    }

    private void CompleteWaiters(IReadOnlyList<Entry> committed)
    {
        var first = committed[0].Index;
        var last = committed[^1].Index;
        while (waiting.TryPeek(out var waiter) && waiter.Index <= last.Value)
        {
            waiting.Dequeue();
            var at = waiter.Index - first.Value;
            var outcome = at >= 0 && committed[(int)at].Term.Value == waiter.Term ? ProposeOutcome.Committed : ProposeOutcome.Unknown;
            waiter.TryComplete(outcome);
        }
    }

    private void Publish(RaftNode n)
    {
        if (fatal is not null)
        {
            return; // the replica stopped: its view stays Stopped
        }

        PublishLease(n);
        var role = n.Role switch
        {
            Role.Leader => ReplicaRole.Leader,
            Role.Candidate or Role.PreCandidate => ReplicaRole.Candidate,
            _ => ReplicaRole.Follower,
        };
        var info = new LeadershipInfo(role, n.Term, n.Leader);
        var previous = leadership.Value;
        if (info == previous)
        {
            return;
        }

        leadership = new StrongBox<LeadershipInfo>(info);
        if (role != ReplicaRole.Leader || previous.Term != info.Term)
        {
            // Leadership lost (or a new term): what was appended may still commit under the next leader, or not.
            while (waiting.TryDequeue(out var waiter))
            {
                waiter.TryComplete(ProposeOutcome.Unknown);
            }
        }

        host!.OnLeadershipChanged(info);
        WakeReaders();
    }

    /// <summary>
    /// Appends <paramref name="batch"/> as one entry if this replica leads in exactly <paramref name="term"/>; completes
    /// when it is committed (or can no longer be, or the token is cancelled): see <see cref="IReplicationBackend.ProposeAsync"/>.
    /// </summary>
    public ValueTask<ProposeResult> ProposeAsync(ReadOnlyMemory<byte> batch, Term term, CancellationToken token)
    {
        var view = Leadership;
        if (stopRequested || view.Role != ReplicaRole.Leader || view.Term != term || token.IsCancellationRequested)
        {
            return ValueTask.FromResult(new ProposeResult(ProposeOutcome.NotLeader, term, default));
        }

        var waiter = ProposalWaiter.Rent(waiterPool, batch.Span, term.Value, token);
        var task = waiter.Task;
        proposals.Enqueue(waiter);
        Point("proposal queued");
        Kick();
        if (stopRequested)
        {
            // Stop may have drained the queue before this proposal arrived in it: nothing will take it now.
            while (proposals.TryDequeue(out var left))
            {
                left.TryComplete(ProposeOutcome.NotLeader);
            }
        }

        return task;
    }

    /// <summary>Queues a peer's message for the core (any thread); <see cref="Kick"/> after a batch of them.</summary>
    public void Receive(Message message, long receivedUs)
    {
        inbound.Enqueue(new Inbound(message, receivedUs, null));
        Point("message queued");
    }
}
