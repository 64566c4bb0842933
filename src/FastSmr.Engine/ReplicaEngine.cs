using System.Buffers;
using System.Runtime.CompilerServices;
using System.Threading.Channels;
using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Core.StateMachines;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastSmr.Engine;

/// <summary>
/// The replica runtime: group commit of client commands into log entries, the pending-request table, apply of
/// committed entries to the state machine, outputs, reads, status and snapshot hooks. It runs on top of any
/// <see cref="IReplicationBackend"/>.
/// </summary>
/// <remarks>
/// Completion rule: a request completes only from the committed entry that carries its own term and batch id —
/// never from whatever was committed at "its" index.
/// Concurrency profile: <see cref="SubmitAsync(ReadOnlySpan{byte}, TimeSpan, CommandOptions, ulong, ulong)"/> and
/// <see cref="ReadAsync"/> may be called from any thread; one batcher task builds batches; the back-end calls
/// <see cref="IReplicationHost.ApplyAsync"/> from one thread at a time.
/// </remarks>
public sealed partial class ReplicaEngine : IReplicationHost, IAsyncDisposable
{
    private readonly EngineOptions options;
    private readonly IStateMachine stateMachine;
    private readonly Func<IStateMachine>? newStateMachine; // scratch instances to check received snapshots with
    private readonly TaskCompletionSource<Exception> failure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly IReplicationBackend backend;
    private readonly ILogger logger;
    private readonly TimeProvider time;
    private readonly PendingCommandPool commandPool;
    private readonly Channel<PendingCommand> queue;
    private readonly Lock stateLock = new();
    private readonly Lock pendingLock = new();
    private readonly Dictionary<ulong, PendingBatch> pendingBatches = [];
    private readonly Stack<PendingBatch> batchPool = new();
    private readonly ArrayBufferWriter<byte> applyOutput = new(4096);
    private readonly CancellationTokenSource stopping = new();
    private readonly TaskScheduler? scheduler; // where the engine's own tasks run (null: the thread pool)
    private readonly bool resume; // continue awaits on the captured scheduler: only under a simulator's scheduler
    private Task? batcherTask;
    private Task? sweeperTask;
    private int queuedCount;
    private long queuedBytes;
    private int readsInFlight;
    private LogIndex appliedIndex;
    private Term appliedTerm;
    private long appliedTimestampMicros;
    private StrongBox<LeadershipInfo> leadership;
    private int started;

    /// <summary>Creates an engine. Call <see cref="StartAsync"/> before submitting.</summary>
    /// <param name="options">Limits and identity.</param>
    /// <param name="stateMachine">The replicated state machine.</param>
    /// <param name="backend">The consensus implementation.</param>
    /// <param name="logger">Logging.</param>
    /// <param name="time">The clock; the system's when null.</param>
    /// <param name="newStateMachine">Makes an empty state machine of the same kind, into which a snapshot received from
    /// a peer is restored as a check before it may replace anything; when null only the snapshot's header is checked.</param>
    /// <param name="scheduler">Where the engine's own tasks (batcher, deadline sweeper, no-op proposals) run and where
    /// every await inside the engine resumes; null (the default): the thread pool, never the caller's context. A
    /// simulator passes a single-threaded scheduler of its own, with <paramref name="time"/> its clock, so that a whole
    /// replica runs deterministically.</param>
    public ReplicaEngine(
        EngineOptions options,
        IStateMachine stateMachine,
        IReplicationBackend backend,
        ILogger<ReplicaEngine>? logger = null,
        TimeProvider? time = null,
        Func<IStateMachine>? newStateMachine = null,
        TaskScheduler? scheduler = null
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(stateMachine);
        ArgumentNullException.ThrowIfNull(backend);
        options.Validate();
        this.options = options;
        this.stateMachine = stateMachine;
        this.newStateMachine = newStateMachine;
        this.backend = backend;
        this.logger = (ILogger?)logger ?? NullLogger.Instance;
        this.time = time ?? TimeProvider.System;
        this.scheduler = scheduler;
        resume = scheduler is not null;
        commandPool = new PendingCommandPool(Math.Min(options.QueuedCommandsMax, 16_384));
        queue = Channel.CreateUnbounded<PendingCommand>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = false });
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Follower, default, ReplicaId.None));
    }

    /// <summary>
    /// Completes, with the cause, when the state machine threw while applying a committed entry: the replica has
    /// stopped applying for good (see the policy on the apply path) and should stop.
    /// </summary>
    public Task<Exception> Failure => failure.Task;

    /// <summary>This replica's id.</summary>
    public ReplicaId ReplicaId => options.ReplicaId;

    /// <summary>The options the engine runs with.</summary>
    public EngineOptions Options => options;

    /// <summary>The current leadership view.</summary>
    public LeadershipInfo Leadership => Volatile.Read(ref leadership).Value;

    /// <summary>Commands accepted and not yet proposed (bounded by <see cref="EngineOptions.QueuedCommandsMax"/>; past it, Busy).</summary>
    public int QueuedCommands => Volatile.Read(ref queuedCount);

    /// <summary>The back-end the engine runs on.</summary>
    public IReplicationBackend Backend => backend;

    /// <inheritdoc />
    public LogIndex AppliedIndex
    {
        get
        {
            lock (stateLock)
            {
                return appliedIndex;
            }
        }
    }

    /// <summary>Starts the back-end, the batcher and the deadline sweeper.</summary>
    public async Task StartAsync(CancellationToken token = default)
    {
        if (Interlocked.Exchange(ref started, 1) != 0)
        {
            throw new InvalidOperationException("the engine is already started");
        }

        await backend.StartAsync(this, token).ConfigureAwait(resume);
        batcherTask = Run(RunBatcherAsync);
        sweeperTask = Run(RunDeadlineSweeperAsync);
    }

    /// <summary>Stops accepting work, answers everything still waiting, and stops the back-end.</summary>
    public async Task StopAsync(CancellationToken token = default)
    {
        if (Interlocked.Exchange(ref started, 2) != 1)
        {
            return;
        }

        await stopping.CancelAsync().ConfigureAwait(resume);
        queue.Writer.TryComplete();
        try
        {
            if (batcherTask is not null)
            {
                await batcherTask.ConfigureAwait(resume);
            }

            if (sweeperTask is not null)
            {
                await sweeperTask.ConfigureAwait(resume);
            }
        }
        catch (OperationCanceledException) { }

        // Queued commands were never appended; proposed ones may still commit elsewhere.
        while (queue.Reader.TryRead(out var command))
        {
            command.TryComplete(SubmitStatus.Unavailable);
            command.Release();
        }

        FailAllPending(SubmitStatus.Unknown);
        await backend.StopAsync(token).ConfigureAwait(resume);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(resume);
        await backend.DisposeAsync().ConfigureAwait(resume);
        stopping.Dispose();
    }

    /// <summary>
    /// Submits one command. Completes with <see cref="SubmitStatus.Ok"/> and the output once the command is committed on
    /// a majority and applied here, or with another status (see <see cref="SubmitStatus"/>).
    /// </summary>
    /// <param name="command">The command bytes (copied before the call returns).</param>
    /// <param name="timeout">The request's deadline, counted from now; <see cref="TimeSpan.Zero"/> means the default. An
    /// expired request is dropped before append (<see cref="SubmitStatus.Timeout"/>); one that expires after append
    /// completes <see cref="SubmitStatus.Unknown"/>.</param>
    /// <param name="commandOptions">Per-command flags (idempotent, ...).</param>
    /// <param name="clientId">The client session id (reserved for exactly-once sessions; 0 for none).</param>
    /// <param name="sequence">The client's sequence number (reserved; 0 for none).</param>
    public ValueTask<SubmitResult> SubmitAsync(
        ReadOnlySpan<byte> command,
        TimeSpan timeout,
        CommandOptions commandOptions = CommandOptions.None,
        ulong clientId = 0,
        ulong sequence = 0
    )
    {
        if (command.Length > options.CommandBytesMax)
        {
            return new(SubmitResult.FromStatus(SubmitStatus.Rejected));
        }

        if (!TryAdmit(BatchFormat.RecordHeaderSize + command.Length, timeout, out var pending, out var refused))
        {
            return new(refused);
        }

        var buffer = pending.RecordBuffer;
        BatchFormat.WriteRecordHeader(buffer, command.Length, commandOptions, clientId, sequence);
        command.CopyTo(buffer[BatchFormat.RecordHeaderSize..]);
        return Enqueue(pending);
    }

    /// <summary>
    /// Submits one command given as a whole command record (record header and command bytes), exactly as a client's
    /// Submit frame carries it. The record is copied once, into the batch; it is never re-encoded.
    /// </summary>
    public ValueTask<SubmitResult> SubmitRecordAsync(ReadOnlySequence<byte> record, TimeSpan timeout)
    {
        if (record.Length < BatchFormat.RecordHeaderSize || record.Length > BatchFormat.RecordHeaderSize + options.CommandBytesMax)
        {
            return new(SubmitResult.FromStatus(SubmitStatus.Rejected));
        }

        Span<byte> header = stackalloc byte[BatchFormat.RecordHeaderSize];
        record.Slice(0, BatchFormat.RecordHeaderSize).CopyTo(header);
        if (System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(header) != record.Length - BatchFormat.RecordHeaderSize)
        {
            return new(SubmitResult.FromStatus(SubmitStatus.Rejected));
        }

        if (!TryAdmit((int)record.Length, timeout, out var pending, out var refused))
        {
            return new(refused);
        }

        record.CopyTo(pending.RecordBuffer);
        return Enqueue(pending);
    }

    /// <summary>The status frame's content: id, role, term, commit and applied index, digest at the applied index.</summary>
    public StatusReport GetStatus()
    {
        var view = Leadership;
        var commit = backend.CommitIndex;
        lock (stateLock)
        {
            return new StatusReport(
                options.ReplicaId,
                view.Role,
                view.Term,
                commit < appliedIndex ? appliedIndex : commit,
                appliedIndex,
                stateMachine.GetDigest(),
                view.LeaderId
            );
        }
    }

    /// <inheritdoc />
    void IReplicationHost.OnLeadershipChanged(LeadershipInfo info)
    {
        var previous = Leadership;
        Volatile.Write(ref leadership, new StrongBox<LeadershipInfo>(info));
        if (previous.Role != info.Role || previous.Term != info.Term || previous.LeaderId != info.LeaderId)
        {
            EngineLog.LeadershipChanged(logger, options.ReplicaId, info.Role, info.Term.Value, info.LeaderId);
        }

        if (
            info.Role == ReplicaRole.Leader
            && (previous.Role != ReplicaRole.Leader || previous.Term != info.Term)
            && Volatile.Read(ref started) == 1
        )
        {
            // Raft thesis §3.6.2 / §6.4: a new leader commits entries of earlier terms only by committing one of its own
            // term, and reads need that too. Stock DotNext 6.12 left earlier-term entries uncommitted after a restart
            // until a client write arrived, so the engine proposes a no-op at the start of every term it leads.
            _ = Run(() => ProposeNoOpAsync(info.Term));
        }
    }

    private async Task ProposeNoOpAsync(Term term)
    {
        var entry = new byte[BatchFormat.HeaderSize];
        var timestamp = Math.Max(NowMicros(), Volatile.Read(ref appliedTimestampMicros));
        BatchFormat.WriteNoOp(entry, batchId: 0, timestamp, options.ReplicaId);
        try
        {
            var result = await backend.ProposeAsync(entry, term, stopping.Token).ConfigureAwait(resume);
            EngineLog.NoOpProposed(logger, options.ReplicaId, term.Value, result.Outcome);
        }
        catch (OperationCanceledException) { }
#pragma warning disable CA1031 // Losing the no-op only delays commitment until the next write; it must not crash the replica.
        catch (Exception e)
#pragma warning restore CA1031
        {
            EngineLog.ProposeFailed(logger, e);
        }
    }

    private bool TryAdmit(int recordLength, TimeSpan timeout, out PendingCommand pending, out SubmitResult refused)
    {
        pending = null!;
        if (Volatile.Read(ref started) != 1)
        {
            refused = SubmitResult.FromStatus(SubmitStatus.Unavailable);
            return false;
        }

        var view = Leadership;
        if (view.Role != ReplicaRole.Leader)
        {
            refused = SubmitResult.FromStatus(
                view.LeaderId == ReplicaId.None ? SubmitStatus.Unavailable : SubmitStatus.NotLeader,
                view.LeaderId
            );
            return false;
        }

        if (Interlocked.Increment(ref queuedCount) > options.QueuedCommandsMax)
        {
            Interlocked.Decrement(ref queuedCount);
            refused = SubmitResult.FromStatus(SubmitStatus.Busy);
            return false;
        }

        if (Interlocked.Add(ref queuedBytes, recordLength) > options.QueuedBytesMax)
        {
            Interlocked.Add(ref queuedBytes, -recordLength);
            Interlocked.Decrement(ref queuedCount);
            refused = SubmitResult.FromStatus(SubmitStatus.Busy);
            return false;
        }

        pending = commandPool.Rent();
        pending.Initialize(recordLength, DeadlineFrom(timeout));
        refused = default;
        return true;
    }

    private ValueTask<SubmitResult> Enqueue(PendingCommand pending)
    {
        var task = new ValueTask<SubmitResult>(pending, pending.Version);
        if (!queue.Writer.TryWrite(pending))
        {
            Interlocked.Decrement(ref queuedCount);
            Interlocked.Add(ref queuedBytes, -pending.RecordLength);
            pending.TryComplete(SubmitStatus.Unavailable);
            pending.Release();
        }

        return task;
    }

    private long DeadlineFrom(TimeSpan timeout)
    {
        if (timeout <= TimeSpan.Zero)
        {
            timeout = options.DefaultTimeout;
        }
        else if (timeout > options.TimeoutMax)
        {
            timeout = options.TimeoutMax;
        }

        return time.GetTimestamp() + (long)(timeout.TotalSeconds * time.TimestampFrequency);
    }

    /// <summary>Runs one of the engine's own tasks: on the thread pool, or on the scheduler it was given.</summary>
    private Task Run(Func<Task> work) =>
        scheduler is null
            ? Task.Run(work, CancellationToken.None)
            : Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, scheduler).Unwrap();

    private long NowMicros() => (time.GetUtcNow() - DateTimeOffset.UnixEpoch).Ticks / 10;
}
