using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>The three threads: replication (the core), flusher (fdatasync) and apply (the host's state machine).</summary>
public sealed partial class NativeBackend
{
    private const int InboundPerRound = 4_096;
    private long lastApplied;
    private ClusterConfig applyConfig = null!;
    private long lastSnapshotIndex;
    private long flushSequence;
    private long lastLeaseUntil;

    private void RaftLoop()
    {
        var n = node!;
        var nextTick = 0L;
        try
        {
            while (!stopRequested)
            {
                raftSignal.Reset();
                var now = NowUs();
                var worked = TakePersisted(n);
                var taken = 0;
                while (taken < InboundPerRound && inbound.TryDequeue(out var item))
                {
                    StepInbound(n, item);
                    taken++;
                }

                worked |= taken > 0;
                while (proposals.TryDequeue(out var waiter))
                {
                    Propose(n, waiter);
                    worked = true;
                }

                while (compactions.TryDequeue(out var snapshot))
                {
                    Compact(n, snapshot);
                }

                if (now >= nextTick)
                {
                    if (!rejoining || n.Role == Role.Leader)
                    {
                        n.Tick(now);
                    }

                    nextTick = now + TickUs;
                }

                while (n.HasReady)
                {
                    HandleReady(n, n.GetReady());
                    worked = true;
                }

                Publish(n);
                if (!worked && inbound.IsEmpty && proposals.IsEmpty)
                {
                    raftSignal.Wait(TimeSpan.FromTicks(Math.Max(1, (nextTick - NowUs()) * 10)));
                }
            }
        }
#pragma warning disable CA1031 // Anything escaping here stops this replica with the reason logged; a crash would lose the reason.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
        }
    }

    private bool TakePersisted(RaftNode n)
    {
        long index, term;
        lock (persistedGate)
        {
            if (!persistedPending)
            {
                return false;
            }

            persistedPending = false;
            index = persistedIndex;
            term = persistedTerm;
        }

        n.Persisted(index, term);
        return true;
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

            if (stagedSnapshots.Remove(message.Index, out var older))
            {
                SnapshotFile.TryDelete(older);
            }

            stagedSnapshots[message.Index] = item.StagedSnapshot;
        }

        if (rejoining)
        {
            if (message.Type is MessageType.PreVote or MessageType.Vote)
            {
                return; // a non-voter until caught up: the request goes unanswered, as if lost
            }

            if (message.Type is MessageType.Append or MessageType.Heartbeat && message.Term >= n.Term)
            {
                rejoinLeaderCommit = Math.Max(rejoinLeaderCommit, message.Commit);
            }
        }

        n.Step(message, item.ReceivedUs);
        if (rejoining && rejoinLeaderCommit > 0 && n.CommitIndex >= rejoinLeaderCommit && n.StableIndex >= rejoinLeaderCommit)
        {
            StoreBootId(); // caught up: from now on this replica's acknowledgements are its own again
            Volatile.Write(ref rejoining, false);
            Log.Rejoined(logger, options.ReplicaId);
        }
    }

    private void Propose(RaftNode n, ProposalWaiter waiter)
    {
        if (n.Role != Role.Leader || n.Term != waiter.Term)
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

        waiter.Index = result.Index;
        waiting.Enqueue(waiter);
    }

    private void Compact(RaftNode n, SnapshotHeader snapshot)
    {
        if (snapshot.Index <= n.SnapshotIndex)
        {
            return; // a leader's snapshot was installed meanwhile
        }

        n.Compact(snapshot.Index);
        if (options.Durability == DurabilityMode.Memory)
        {
            log!.Flush(snapshot.Index); // only durable entries are compacted away
        }

        log!.CompactPrefix(snapshot.Index);
        currentSnapshot = snapshot;
        SnapshotFile.DeleteOlder(snapshotDirectory, snapshot.Index);
        Log.SnapshotTaken(logger, options.ReplicaId, snapshot.Index);
    }

    private void HandleReady(RaftNode n, Ready ready)
    {
        var storage = log!;
        if (ready.Snapshot is { } snapshot)
        {
            InstallSnapshot(snapshot);
        }

        if (ready.HardStateChanged)
        {
            // Term and vote are durable before any message that depends on them leaves. The commit index goes along
            // only as far as the log is durable here (in memory mode that may be less than the core's).
            var hard = ready.HardState;
            var commit = Math.Max(storage.Metadata.CommitIndex, Math.Min(hard.Commit, storage.DurableIndex));
            storage.SaveState(hard.Term, (uint)hard.Vote, commit);
        }

        if (ready.Entries.Count > 0)
        {
            AppendEntries(n, ready.Entries);
        }

        PublishLease(n); // before the messages: a transfer's TimeoutNow must not leave while the old lease still shows
        var messages = ready.Messages;
        for (var i = 0; i < messages.Count; i++)
        {
            var message = messages[i];
            if (message.Type == MessageType.Snapshot)
            {
                if (currentSnapshot is { } current && current.Index == message.Index)
                {
                    transport!.SendSnapshot(message, current.Path);
                }
            }
            else
            {
                transport!.Send(message);
            }
        }

        transport!.FlushAll();
        var committed = ready.CommittedEntries;
        if (committed.Count > 0)
        {
            for (var i = 0; i < committed.Count; i++)
            {
                applyQueue.Enqueue(new ApplyItem(committed[i], null));
            }

            applySignal.Set();
            CompleteWaiters(committed);
        }

        n.Advance(ready);
    }

    private void AppendEntries(RaftNode n, IReadOnlyList<Entry> entries)
    {
        var storage = log!;
        var first = entries[0].Index;
        if (first <= storage.LastIndex)
        {
            storage.TruncateSuffix(first); // durable when it returns
        }

        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            var index = storage.Append(entry.Term, entry.Data.Span, ToRecordType(entry.Type));
            if (index != entry.Index)
            {
                throw new InvalidOperationException("the log appended entry " + entry.Index + " at index " + index);
            }
        }

        var last = entries[^1];
        if (options.Durability == DurabilityMode.Durable)
        {
            lock (persistedGate)
            {
                flushTargetIndex = last.Index;
                flushTargetTerm = last.Term;
                flushSequence++;
            }

            flushSignal.Set();
        }
        else
        {
            storage.Submit(); // in the kernel: survives this process, which is what memory mode promises
            n.Persisted(last.Index, last.Term);
        }
    }

    private void CompleteWaiters(IReadOnlyList<Entry> committed)
    {
        var first = committed[0].Index;
        var last = committed[^1].Index;
        while (waiting.TryPeek(out var waiter) && waiter.Index <= last)
        {
            waiting.Dequeue();
            var at = waiter.Index - first;
            var outcome = at >= 0 && committed[(int)at].Term == waiter.Term ? ProposeOutcome.Committed : ProposeOutcome.Unknown;
            waiter.TryComplete(outcome);
        }
    }

    private void InstallSnapshot(SnapshotInfo snapshot)
    {
        if (!stagedSnapshots.Remove(snapshot.Index, out var staged))
        {
            throw new InvalidOperationException("the core installs snapshot " + snapshot.Index + " but no file was received for it");
        }

        var path = SnapshotFile.PathFor(snapshotDirectory, snapshot.Index);
        FastSmr.Log.DurableFile.Commit(staged, path);
        var header = SnapshotFile.Verify(path);
        log!.Reset(snapshot.Index, snapshot.Term);
        currentSnapshot = header;
        foreach (var (index, other) in stagedSnapshots.Where(s => s.Key <= snapshot.Index).ToList())
        {
            stagedSnapshots.Remove(index);
            SnapshotFile.TryDelete(other);
        }

        SnapshotFile.DeleteOlder(snapshotDirectory, snapshot.Index);
        applyQueue.Enqueue(new ApplyItem(default, header));
        applySignal.Set();
        Log.SnapshotInstalled(logger, options.ReplicaId, snapshot.Index);
    }

    private void PublishLease(RaftNode n)
    {
        var lease = n.LeaseUntil;
        var ownTerm = n.Role == Role.Leader && n.TermAt(n.CommitIndex) == n.Term ? 1 : 0;
        bool wake;
        lock (readGate)
        {
            wake = (lease > 0 && lastLeaseUntil == 0) || leaseTerm != n.Term || ownTermCommitted != ownTerm;
            leaseTerm = n.Term;
            ownTermCommitted = ownTerm;
            leaseUntilUs = lease;
            lastLeaseUntil = lease;
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
            readWaiters = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        woken.TrySetResult();
    }

    private void Publish(RaftNode n)
    {
        Volatile.Write(ref commitIndex, n.CommitIndex);
        PublishLease(n);
        var role = n.Role switch
        {
            Role.Leader => ReplicaRole.Leader,
            Role.Candidate or Role.PreCandidate => ReplicaRole.Candidate,
            _ => ReplicaRole.Follower,
        };
        var info = new LeadershipInfo(role, new Term(n.Term), (uint)Math.Max(0, n.Leader));
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

    private void FlushLoop()
    {
        var storage = log!;
        var flushed = 0L;
        try
        {
            while (!stopRequested)
            {
                flushSignal.Reset();
                long index, term, sequence;
                lock (persistedGate)
                {
                    index = flushTargetIndex;
                    term = flushTargetTerm;
                    sequence = flushSequence;
                }

                if (sequence == flushed)
                {
                    flushSignal.Wait(100);
                    continue;
                }

                // One fdatasync covers everything appended so far: requests that arrived meanwhile share it.
                storage.Flush(index);
                flushed = sequence;
                lock (persistedGate)
                {
                    persistedIndex = index;
                    persistedTerm = term;
                    persistedPending = true;
                }

                raftSignal.Set();
            }
        }
#pragma warning disable CA1031 // A failed sync stops the replica with the reason logged.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
            raftSignal.Set();
        }
    }

    private void ApplyLoop()
    {
        var replicationHost = host!;
        try
        {
            while (!stopRequested)
            {
                applySignal.Reset();
                var any = false;
                while (!stopRequested && applyQueue.TryDequeue(out var item))
                {
                    any = true;
                    if (item.Restore is { } restore)
                    {
                        using var stream = new FileStream(restore.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
                        stream.Position = restore.StateOffset;
                        replicationHost.RestoreSnapshot(stream, new LogIndex(restore.Index), new Term(restore.Term));
                        lastApplied = restore.Index;
                        lastSnapshotIndex = restore.Index;
                        applyConfig = restore.Config;
                        continue;
                    }

                    var entry = item.Entry;
                    if (entry.Index <= lastApplied)
                    {
                        continue;
                    }

                    var bytes = entry.Type == EntryType.Normal ? entry.Data : ReadOnlyMemory<byte>.Empty;
                    var applied = replicationHost.ApplyAsync(new CommittedEntry(new LogIndex(entry.Index), new Term(entry.Term), bytes), CancellationToken.None);
                    if (!applied.IsCompletedSuccessfully)
                    {
                        applied.AsTask().GetAwaiter().GetResult();
                    }

                    lastApplied = entry.Index;
                    if (entry.Type == EntryType.Config)
                    {
                        applyConfig = ClusterConfig.Decode(entry.Data.Span);
                    }

                    if (lastApplied - lastSnapshotIndex >= options.SnapshotInterval)
                    {
                        var header = SnapshotFile.Write(snapshotDirectory, applyConfig, s =>
                        {
                            var (index, term) = replicationHost.WriteSnapshot(s);
                            return (index.Value, term.Value);
                        });
                        lastSnapshotIndex = header.Index;
                        compactions.Enqueue(header);
                        raftSignal.Set();
                    }
                }

                if (!any)
                {
                    applySignal.Wait(100);
                }
            }
        }
#pragma warning disable CA1031 // A failing state machine stops the replica with the reason logged.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
            raftSignal.Set();
        }
    }
}
