using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Core.StateMachines;

namespace FastSmr.Engine;

public sealed partial class ReplicaEngine
{
    private readonly Lock appliedWaitLock = new();
    private TaskCompletionSource? appliedSignal;
    private long snapshotsRestored;
    private readonly System.Buffers.ArrayBufferWriter<byte> queryOutput = new(256);

    /// <summary>How many snapshots this replica has installed since it started (at start-up or sent by the leader).</summary>
    public long SnapshotsRestored => Interlocked.Read(ref snapshotsRestored);

    /// <inheritdoc />
    ValueTask IReplicationHost.ApplyAsync(CommittedEntry entry, CancellationToken token)
    {
        PendingBatch? matched = null;
        var span = entry.Bytes.Span;
        if (failure.Task.IsCompleted)
        {
            throw new InvalidOperationException("the state machine failed earlier; nothing more is applied", failure.Task.Result);
        }

        lock (stateLock)
        {
            if (entry.Index <= appliedIndex)
            {
                // A back-end may replay entries already covered by a restored snapshot; applying twice would diverge.
                return ValueTask.CompletedTask;
            }

            if (!span.IsEmpty)
            {
                if (!BatchFormat.TryParse(span, out var header, out var error))
                {
                    // Every replica sees the same bytes, so skipping is deterministic; it is still a bug to report.
                    EngineLog.MalformedEntry(logger, entry.Index.Value, error);
                }
                else if (header.EntryType == EntryType.Commands)
                {
                    matched = header.ProposerId == options.ReplicaId ? ClaimBatch(header.BatchId, entry.Term) : null;
                    ApplyCommands(entry, header, span, matched);
                }
            }

            appliedIndex = entry.Index;
            appliedTerm = entry.Term;
        }

        AfterApply(entry.Index, matched, retireLost: true);
        return ValueTask.CompletedTask;
    }

    private void ApplyCommands(CommittedEntry entry, in BatchHeader header, ReadOnlySpan<byte> span, PendingBatch? matched)
    {
        // The leader's timestamp never goes backwards as the state machine sees it, whatever the leaders' clocks did.
        var timestamp = Math.Max(header.LeaderTimestampMicros, appliedTimestampMicros);
        Volatile.Write(ref appliedTimestampMicros, timestamp);
        var ordinal = 0;
        foreach (var record in BatchFormat.EnumerateRecords(span))
        {
            applyOutput.ResetWrittenCount();
            var context = new ApplyContext(entry.Index, ordinal, timestamp, record.ClientId, record.Sequence);
            try
            {
                stateMachine.Apply(context, record.Command, applyOutput);
            }
#pragma warning disable CA1031 // Deliberately fail-stop on any exception (see below).
            catch (Exception e)
#pragma warning restore CA1031
            {
                throw StateMachineFailed(entry.Index, ordinal, matched, e);
            }
            if (matched is not null && ordinal < matched.Commands.Count)
            {
                var command = matched.Commands[ordinal];
                if (!command.IsCompleted)
                {
                    command.TryComplete(SubmitResult.FromOutput(applyOutput.WrittenSpan));
                }
            }

            ordinal++;
        }
    }

    /// <summary>
    /// The policy for a state machine that throws in Apply: the state may be half-changed and every replica throws at
    /// the same entry, so skipping it could diverge replicas and retrying cannot help. The replica stops: the cause is
    /// logged once with the entry, <see cref="Failure"/> completes (the server stops, <c>fastsmr serve</c> exits with
    /// code 1), the entry's unanswered commands are answered Unknown, and the exception returned here goes to the
    /// back-end, which applies nothing more. The whole cluster stops at that entry, consistently; a state machine
    /// that answers errors instead of throwing (as <c>KvStateMachine</c> does) is the fix, then a restart.
    /// </summary>
    private InvalidOperationException StateMachineFailed(LogIndex index, int ordinal, PendingBatch? matched, Exception e)
    {
        EngineLog.StateMachineFailed(logger, e, index.Value, ordinal);
        var failed = new InvalidOperationException(
            "the state machine threw applying entry "
                + index
                + ", command "
                + ordinal.ToString(System.Globalization.CultureInfo.InvariantCulture)
                + ": "
                + e.Message,
            e
        );
        failure.TrySetResult(failed);
        if (matched is not null)
        {
            foreach (var command in matched.Commands)
            {
                command.TryComplete(SubmitStatus.Unknown);
            }
        }

        return failed;
    }

    /// <summary>
    /// Claims the pending batch this entry carries: it leaves the table under the lock, so from here on only the apply
    /// thread touches it (the deadline sweeper, a late round and <see cref="StopAsync"/> no longer see it).
    /// </summary>
    private PendingBatch? ClaimBatch(ulong batchId, Term term)
    {
        lock (pendingLock)
        {
            if (pendingBatches.TryGetValue(batchId, out var batch) && batch.Term == term)
            {
                pendingBatches.Remove(batchId);
                return batch;
            }

            return null;
        }
    }

    private void AfterApply(LogIndex index, PendingBatch? claimed, bool retireLost)
    {
        lock (pendingLock)
        {
            if (claimed is not null)
            {
                ReleaseLocked(claimed);
            }

            // Not after a snapshot install: a batch at or below the snapshot's index may be inside the snapshot.
            if (retireLost && pendingBatches.Count > 0)
            {
                RetireLostLocked(index);
            }
        }

        TaskCompletionSource? signal;
        lock (appliedWaitLock)
        {
            signal = appliedSignal;
            appliedSignal = null;
        }

        signal?.TrySetResult();
    }

    /// <summary>
    /// A batch appended at an index that is now applied without it can never commit (committed logs never diverge and an
    /// entry never moves), so its commands were not applied and are answered NotLeader: safe to retry.
    /// </summary>
    private void RetireLostLocked(LogIndex applied) => RetireAtOrBelowLocked(applied, SubmitStatus.NotLeader);

    /// <summary>
    /// Batches appended here at or below the index of a snapshot just installed may be inside it (committed under the
    /// next leader, which took them from this replica's log) or not: they are answered Unknown, never NotLeader, or a
    /// client would retry a command that took effect (found by the whole-system simulator, 5 replicas, seed 42: a
    /// leader cut off with two commands appended, one of them replicated; after the heal it installed its successor's
    /// snapshot, then retired both as lost at its next applied entry).
    /// </summary>
    private void RetireUnknowableLocked(LogIndex snapshotIndex) => RetireAtOrBelowLocked(snapshotIndex, SubmitStatus.Unknown);

    private void RetireAtOrBelowLocked(LogIndex index, SubmitStatus status)
    {
        List<PendingBatch>? retired = null;
        foreach (var batch in pendingBatches.Values)
        {
            if (batch.Index.Value != 0 && batch.Index <= index)
            {
                (retired ??= []).Add(batch);
            }
        }

        if (retired is null)
        {
            return;
        }

        var view = Leadership;
        foreach (var batch in retired)
        {
            foreach (var command in batch.Commands)
            {
                command.TryComplete(status, status == SubmitStatus.NotLeader ? view.LeaderId : default);
            }

            RetireLocked(batch);
        }
    }

    /// <summary>Waits until the applied index reaches <paramref name="target"/>.</summary>
    public async ValueTask WaitForAppliedAsync(LogIndex target, CancellationToken token)
    {
        while (true)
        {
            Task wait;
            lock (appliedWaitLock)
            {
                if (AppliedIndex >= target)
                {
                    return;
                }

                appliedSignal ??= new TaskCompletionSource(
                    resume ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously
                );
                wait = appliedSignal.Task;
            }

            await wait.WaitAsync(token).ConfigureAwait(resume);
        }
    }

    /// <inheritdoc />
    (LogIndex Index, Term Term) IReplicationHost.WriteSnapshot(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        lock (stateLock)
        {
            Span<byte> header = stackalloc byte[SnapshotFormat.ImageHeaderSize];
            SnapshotFormat.WriteImageHeader(
                header,
                new SnapshotImageHeader(options.ClusterId, options.ReplicaId, appliedIndex, appliedTerm, appliedTimestampMicros)
            );
            destination.Write(header);
            stateMachine.WriteSnapshot(destination);
            return (appliedIndex, appliedTerm);
        }
    }

    /// <inheritdoc />
    void IReplicationHost.RestoreSnapshot(Stream source, LogIndex index, Term term)
    {
        ArgumentNullException.ThrowIfNull(source);
        Span<byte> bytes = stackalloc byte[SnapshotFormat.ImageHeaderSize];
        source.ReadExactly(bytes);
        var header = SnapshotFormat.ReadImageHeader(bytes);
        if (header.ClusterId != options.ClusterId)
        {
            throw new InvalidDataException(
                "snapshot belongs to cluster " + header.ClusterId.ToString("x", System.Globalization.CultureInfo.InvariantCulture)
            );
        }

        lock (stateLock)
        {
            stateMachine.RestoreSnapshot(source);
            appliedIndex = header.Index.Value != 0 ? header.Index : index;
            appliedTerm = header.Term.Value != 0 ? header.Term : term;
            appliedTimestampMicros = header.LeaderTimestampMicros;
        }

        Interlocked.Increment(ref snapshotsRestored);
        EngineLog.SnapshotRestored(logger, options.ReplicaId, appliedIndex.Value);
        lock (pendingLock)
        {
            RetireUnknowableLocked(appliedIndex);
        }

        AfterApply(appliedIndex, null, retireLost: false);
    }

    /// <inheritdoc />
    void IReplicationHost.ValidateSnapshot(Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        try
        {
            Span<byte> bytes = stackalloc byte[SnapshotFormat.ImageHeaderSize];
            source.ReadExactly(bytes);
            var header = SnapshotFormat.ReadImageHeader(bytes);
            if (header.ClusterId != options.ClusterId)
            {
                throw new InvalidDataException(
                    "snapshot belongs to cluster " + header.ClusterId.ToString("x", System.Globalization.CultureInfo.InvariantCulture)
                );
            }

            newStateMachine?.Invoke().RestoreSnapshot(source);
        }
#pragma warning disable CA1031 // Whatever a state machine throws on foreign bytes means the same: not restorable.
        catch (Exception e) when (e is not (InvalidDataException or OutOfMemoryException))
#pragma warning restore CA1031
        {
            throw new InvalidDataException("the state machine cannot restore this snapshot: " + e.Message, e);
        }
    }

    /// <summary>Runs a query against the applied state, under the state machine's concurrency rule.</summary>
    private SubmitResult QueryLocal(ReadOnlySpan<byte> query)
    {
        // One output buffer, used only under the state lock: a read allocates nothing but its pooled result.
        lock (stateLock)
        {
            queryOutput.ResetWrittenCount();
            stateMachine.Query(query, queryOutput);
            return SubmitResult.FromOutput(queryOutput.WrittenSpan);
        }
    }

    /// <summary>
    /// Reads through the state machine's <see cref="IStateMachine.Query"/>. <see cref="ReadConsistency.Linearizable"/>
    /// needs the leader: it passes the back-end's read barrier, waits until the applied index reaches the barrier's
    /// commit index, then runs the query.
    /// </summary>
    public async ValueTask<SubmitResult> ReadAsync(ReadOnlyMemory<byte> query, ReadConsistency consistency, TimeSpan timeout = default)
    {
        if (query.Length > options.CommandBytesMax)
        {
            return SubmitResult.FromStatus(SubmitStatus.Rejected);
        }

        if (consistency is not (ReadConsistency.Local or ReadConsistency.Linearizable))
        {
            return SubmitResult.FromStatus(SubmitStatus.Rejected);
        }

        if (Interlocked.Increment(ref readsInFlight) > options.ReadsInFlightMax)
        {
            Interlocked.Decrement(ref readsInFlight);
            return SubmitResult.FromStatus(SubmitStatus.Busy);
        }

        try
        {
            return consistency == ReadConsistency.Local
                ? QueryLocal(query.Span)
                : await ReadLinearizableAsync(query, timeout).ConfigureAwait(resume);
        }
        finally
        {
            Interlocked.Decrement(ref readsInFlight);
        }
    }

    private async ValueTask<SubmitResult> ReadLinearizableAsync(ReadOnlyMemory<byte> query, TimeSpan timeout)
    {
        var view = Leadership;
        if (view.Role != ReplicaRole.Leader)
        {
            return SubmitResult.FromStatus(
                view.LeaderId == ReplicaId.None ? SubmitStatus.Unavailable : SubmitStatus.NotLeader,
                view.LeaderId
            );
        }

        // On the engine's clock (a simulator's time drives it), and cancelled by a stop too.
        using var deadline = new CancellationTokenSource(
            timeout <= TimeSpan.Zero ? options.DefaultTimeout : (timeout > options.TimeoutMax ? options.TimeoutMax : timeout),
            time
        );
        using var stopped = stopping.Token.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), deadline);
        try
        {
            var barrier = await backend.ReadBarrierAsync(deadline.Token).ConfigureAwait(resume);
            if (barrier is not { } index)
            {
                var now = Leadership;
                return SubmitResult.FromStatus(
                    now.LeaderId == ReplicaId.None ? SubmitStatus.Unavailable : SubmitStatus.NotLeader,
                    now.LeaderId
                );
            }

            await WaitForAppliedAsync(index, deadline.Token).ConfigureAwait(resume);
        }
        catch (OperationCanceledException)
        {
            // A read changes nothing, so a read that ran out of time can be reported as not done.
            return SubmitResult.FromStatus(SubmitStatus.Timeout);
        }

        var result = QueryLocal(query.Span);
        if (!backend.ReadStillValid(view.Term))
        {
            // The lease ran out while the query ran: the answer may be stale, and a read may always be reported as not done.
            result.Dispose();
            var now = Leadership;
            return SubmitResult.FromStatus(
                now.Role == ReplicaRole.Leader ? SubmitStatus.Unavailable
                    : now.LeaderId == ReplicaId.None ? SubmitStatus.Unavailable
                    : SubmitStatus.NotLeader,
                now.LeaderId
            );
        }

        return result;
    }
}
