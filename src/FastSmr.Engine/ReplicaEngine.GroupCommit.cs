using System.Runtime.CompilerServices;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;

namespace FastSmr.Engine;

public sealed partial class ReplicaEngine
{
    private ulong lastBatchId;
    private long lastProposedTimestampMicros;

    /// <summary>
    /// Group commit: every command that arrived while earlier rounds were in flight goes out together as one entry.
    /// A batch closes on size, on count, or when the queue is empty — never on a timer — so an idle system sends a
    /// lone command at once and a loaded one sends large batches.
    /// </summary>
    private async Task RunBatcherAsync()
    {
        var token = stopping.Token;
        var reader = queue.Reader;
        var slots = new ProposalSlots(options.ProposalsInFlightMax, asynchronousContinuations: !resume);
        var writers = new Stack<BatchWriter>();
        for (var i = 0; i < options.ProposalsInFlightMax; i++)
        {
            writers.Push(new BatchWriter(options.BatchBytesMax));
        }

        // Commands taken off the channel but not yet in a batch (still counted as queued): the head that did not fit in
        // the last batch, and arrivals drained while every proposal slot was busy, so their deadlines can be enforced.
        var waiting = new Queue<PendingCommand>();
        try
        {
            while (true)
            {
                if (waiting.Count == 0 && !await reader.WaitToReadAsync(token).ConfigureAwait(resume))
                {
                    break;
                }

                await WaitForSlotAsync(slots, waiting, token).ConfigureAwait(resume);
                BatchWriter writer;
                lock (writers)
                {
                    writer = writers.Pop();
                }

                writer.Reset();
                var batch = RentBatch();
                FillBatch(batch, writer, waiting);
                var view = Leadership;
                if (batch.Commands.Count == 0 || view.Role != ReplicaRole.Leader)
                {
                    RefuseNotLeader(batch, view); // nothing was appended: the client may retry safely at the leader
                    ReturnBatch(batch);
                    ReturnWriter(writers, writer);
                    slots.Release();
                    continue;
                }

                var bytes = Propose(batch, writer, view);
                _ = RunRoundAsync(batch, bytes, writer, writers, slots);
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested) { }
        finally
        {
            // Never proposed: safe to retry elsewhere.
            while (waiting.TryDequeue(out var left))
            {
                left.TryComplete(SubmitStatus.Unavailable);
                left.Release();
            }
        }
    }

    /// <summary>
    /// Waits for a proposal slot. While every slot is busy (a slow or stuck commit), commands whose deadline passes are
    /// answered Timeout: they were never proposed, so the client may retry them safely. The sweep interval runs on the
    /// engine's clock, so that a simulator's time drives it too; with a slot free this allocates nothing.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))] // the batcher waits here once per batch under load
    private async ValueTask WaitForSlotAsync(ProposalSlots slots, Queue<PendingCommand> waiting, CancellationToken token)
    {
        var reader = queue.Reader;
        while (!slots.TryTake())
        {
            var released = slots.Released();
            if (!released.IsCompleted)
            {
                using var sweep = CancellationTokenSource.CreateLinkedTokenSource(token);
                await Task.WhenAny(released, Task.Delay(options.DeadlineSweepInterval, time, sweep.Token)).ConfigureAwait(resume);
                sweep.Cancel(); // the timer goes with it when a slot came first (synchronously: never on the thread pool)
            }

            token.ThrowIfCancellationRequested();
            while (reader.TryRead(out var arriving))
            {
                waiting.Enqueue(arriving);
            }

            ExpireWaiting(waiting, time.GetTimestamp());
        }
    }

    /// <summary>Moves waiting and queued commands into <paramref name="batch"/> until it is full by count or by bytes.</summary>
    private void FillBatch(PendingBatch batch, BatchWriter writer, Queue<PendingCommand> waiting)
    {
        var reader = queue.Reader;
        var now = time.GetTimestamp();
        while (batch.Commands.Count < options.BatchCommandsMax)
        {
            if (waiting.Count == 0)
            {
                if (!reader.TryRead(out var next))
                {
                    break;
                }

                waiting.Enqueue(next);
            }

            var command = waiting.Peek();
            var length = command.RecordLength; // read before AddToBatch may release the command
            if (!AddToBatch(batch, writer, command, now))
            {
                break; // does not fit: it heads the next batch
            }

            waiting.Dequeue();
            Interlocked.Decrement(ref queuedCount);
            Interlocked.Add(ref queuedBytes, -length);
        }
    }

    /// <summary>Answers every command of a batch that will not be proposed: NotLeader with the leader's id, or Unavailable.</summary>
    private static void RefuseNotLeader(PendingBatch batch, LeadershipInfo view)
    {
        foreach (var command in batch.Commands)
        {
            command.TryComplete(view.LeaderId == ReplicaId.None ? SubmitStatus.Unavailable : SubmitStatus.NotLeader, view.LeaderId);
            command.Release();
        }
    }

    /// <summary>Stamps the batch (id, term, a leader timestamp that never goes backwards), makes it pending, returns its bytes.</summary>
    private ReadOnlyMemory<byte> Propose(PendingBatch batch, BatchWriter writer, LeadershipInfo view)
    {
        var timestamp = Math.Max(NowMicros(), Math.Max(lastProposedTimestampMicros, Volatile.Read(ref appliedTimestampMicros)));
        lastProposedTimestampMicros = timestamp;
        batch.BatchId = ++lastBatchId;
        batch.Term = view.Term;
        var bytes = writer.Complete(batch.BatchId, timestamp, options.ReplicaId);
        lock (pendingLock)
        {
            pendingBatches.Add(batch.BatchId, batch);
        }

        return bytes;
    }

    private void ExpireWaiting(Queue<PendingCommand> waiting, long now)
    {
        for (var remaining = waiting.Count; remaining > 0; remaining--)
        {
            var command = waiting.Dequeue();
            if (!command.IsCompleted && now <= command.DeadlineTimestamp)
            {
                waiting.Enqueue(command);
                continue;
            }

            Interlocked.Decrement(ref queuedCount);
            Interlocked.Add(ref queuedBytes, -command.RecordLength);
            command.TryComplete(SubmitStatus.Timeout);
            command.Release();
        }
    }

    /// <returns>False when the record does not fit in the batch (the caller carries it to the next batch).</returns>
    private static bool AddToBatch(PendingBatch batch, BatchWriter writer, PendingCommand command, long now)
    {
        if (command.IsCompleted)
        {
            command.Release();
            return true;
        }

        if (now > command.DeadlineTimestamp)
        {
            // Expired before append: dropped, never proposed.
            command.TryComplete(SubmitStatus.Timeout);
            command.Release();
            return true;
        }

        if (!writer.TryAppendRecord(command.Record))
        {
            return false;
        }

        batch.Commands.Add(command);
        return true;
    }

    private async Task RunRoundAsync(
        PendingBatch batch,
        ReadOnlyMemory<byte> bytes,
        BatchWriter writer,
        Stack<BatchWriter> writers,
        ProposalSlots slots
    )
    {
        // The batch may be claimed by apply, retired and reused for new commands while the round is awaited: afterwards
        // it is found again only by the id captured here (batch ids are never reused).
        var batchId = batch.BatchId;
        var proposedTerm = batch.Term;
        ProposeResult result;
        try
        {
            result = await backend.ProposeAsync(bytes, proposedTerm, stopping.Token).ConfigureAwait(resume);
        }
        catch (OperationCanceledException)
        {
            result = new ProposeResult(ProposeOutcome.Unknown, proposedTerm, default);
        }
#pragma warning disable CA1031 // A failed round must answer its clients, whatever the back-end threw.
        catch (Exception e)
#pragma warning restore CA1031
        {
            EngineLog.ProposeFailed(logger, e);
            result = new ProposeResult(ProposeOutcome.Unknown, proposedTerm, default);
        }
        finally
        {
            ReturnWriter(writers, writer);
            slots.Release();
        }

        lock (pendingLock)
        {
            if (!pendingBatches.TryGetValue(batchId, out var registered) || !ReferenceEquals(registered, batch))
            {
                return; // already claimed by apply, or answered and retired
            }

            switch (result.Outcome)
            {
                case ProposeOutcome.NotLeader:
                    var view = Leadership;
                    foreach (var command in batch.Commands)
                    {
                        command.TryComplete(SubmitStatus.NotLeader, view.LeaderId);
                    }

                    RetireLocked(batch);
                    break;
                default:
                    // Committed (apply completes it) or unknown (apply or the deadline sweep completes it).
                    if (result.Term.Value != 0)
                    {
                        batch.Term = result.Term;
                    }

                    if (result.Index.Value != 0)
                    {
                        batch.Index = result.Index;
                    }

                    break;
            }
        }
    }

    private static void ReturnWriter(Stack<BatchWriter> writers, BatchWriter writer)
    {
        lock (writers)
        {
            writers.Push(writer);
        }
    }

    private PendingBatch RentBatch()
    {
        lock (pendingLock)
        {
            return batchPool.Count > 0 ? batchPool.Pop() : new PendingBatch(Math.Min(options.BatchCommandsMax, 1024));
        }
    }

    private void ReturnBatch(PendingBatch batch)
    {
        batch.Reset();
        lock (pendingLock)
        {
            if (batchPool.Count < options.ProposalsInFlightMax * 4)
            {
                batchPool.Push(batch);
            }
        }
    }

    /// <summary>
    /// Removes a batch whose commands are all answered and releases the engine's references. Caller holds
    /// <see cref="pendingLock"/>.
    /// </summary>
    private void RetireLocked(PendingBatch batch)
    {
        pendingBatches.Remove(batch.BatchId);
        ReleaseLocked(batch);
    }

    /// <summary>
    /// Releases the engine's references on a batch that is no longer in the table and pools it. Caller holds
    /// <see cref="pendingLock"/>.
    /// </summary>
    private void ReleaseLocked(PendingBatch batch)
    {
        foreach (var command in batch.Commands)
        {
            command.Release();
        }

        batch.Reset();
        if (batchPool.Count < options.ProposalsInFlightMax * 4)
        {
            batchPool.Push(batch);
        }
    }

    /// <summary>Answers appended commands whose deadline passed with Unknown: they were sent and may still commit.</summary>
    private async Task RunDeadlineSweeperAsync()
    {
        var token = stopping.Token;
        using var timer = new PeriodicTimer(options.DeadlineSweepInterval, time);
        var retire = new List<PendingBatch>();
        try
        {
            while (await timer.WaitForNextTickAsync(token).ConfigureAwait(resume))
            {
                var now = time.GetTimestamp();
                lock (pendingLock)
                {
                    foreach (var batch in pendingBatches.Values)
                    {
                        foreach (var command in batch.Commands)
                        {
                            if (now > command.DeadlineTimestamp)
                            {
                                command.TryComplete(SubmitStatus.Unknown);
                            }
                        }

                        if (batch.AllCompleted)
                        {
                            retire.Add(batch);
                        }
                    }

                    foreach (var batch in retire)
                    {
                        RetireLocked(batch);
                    }
                }

                retire.Clear();
            }
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested) { }
    }

    private void FailAllPending(SubmitStatus status)
    {
        lock (pendingLock)
        {
            foreach (var batch in pendingBatches.Values.ToArray())
            {
                foreach (var command in batch.Commands)
                {
                    command.TryComplete(status);
                }

                RetireLocked(batch);
            }
        }
    }
}
