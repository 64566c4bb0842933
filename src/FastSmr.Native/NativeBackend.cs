using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Log;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastSmr.Native;

/// <summary>
/// The native back-end: a <see cref="NativeReplica"/> over FastSmr.Log (<see cref="DiskStorage"/>), the
/// <see cref="PeerTransport"/> and the system's monotonic clock, on real threads. The thread that brings work — a peer's
/// receive loop, the engine's <see cref="ProposeAsync"/> — runs the core itself when no other thread does (decision 55);
/// a ticker thread ticks it every <see cref="NativeReplica.TickUs"/> µs; with <see cref="NativeBackendOptions.InlineDrive"/>
/// off, it and an apply thread do all the work.
/// </summary>
public sealed class NativeBackend : IReplicationBackend
{
    /// <summary>How long Stop waits for a thread that is inside a round (a sync included) to finish it.</summary>
    private static readonly TimeSpan StopWaitMax = TimeSpan.FromSeconds(30);
    private readonly NativeBackendOptions options;
    private readonly ILogger logger;
    private readonly ManualResetEventSlim raftSignal;
    private readonly ManualResetEventSlim applySignal;
    private NativeReplica? replica;
    private PeerTransport? transport;
    private Thread? raftThread;
    private Thread? applyThread;
    private int stopCalled;
    private readonly TaskCompletionSource<Exception> failure = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the back-end; nothing runs until <see cref="StartAsync"/>.</summary>
    public NativeBackend(NativeBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger<NativeBackend>();
        var spin = options.SpinIterations;
        raftSignal = new ManualResetEventSlim(false, Math.Min(spin, 2047));
        applySignal = new ManualResetEventSlim(false, Math.Min(spin, 2047));
    }

    /// <inheritdoc />
    public LeadershipInfo Leadership => replica?.Leadership ?? new LeadershipInfo(ReplicaRole.Follower, default, ReplicaId.None);

    /// <inheritdoc />
    public LogIndex CommitIndex => replica?.CommitIndex ?? LogIndex.Zero;

    /// <inheritdoc cref="NativeReplica.Rejoining" />
    public bool Rejoining => replica?.Rejoining ?? false;

    /// <inheritdoc />
    public Task<Exception> Failure => failure.Task;

    /// <inheritdoc cref="NativeReplica.SnapshotsRefused" />
    public long SnapshotsRefused => replica?.SnapshotsRefused ?? 0;

    /// <inheritdoc cref="NativeReplica.RefusedMessages" />
    public long RefusedMessages => replica?.RefusedMessages ?? 0;

    /// <summary>Messages the transport dropped (peer unreachable or too far behind).</summary>
    public long DroppedMessages => transport?.Dropped ?? 0;

    /// <inheritdoc />
    public Task StartAsync(IReplicationHost host, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (replica is not null)
        {
            throw new InvalidOperationException("already started");
        }

        var storage = DiskStorage.Open(
            options.DataDirectory,
            new LogOptions
            {
                SegmentSize = options.SegmentBytes,
                ClusterId = options.ClusterId,
                NodeId = options.ReplicaId,
            }
        );
        var core = new NativeReplica(options, storage, CurrentBootId(), logger, raftSignal.Set, applySignal.Set);
        var clock = new MonotonicClock(options.Time);
        transport = new PeerTransport(options, storage.SnapshotDirectory, core.Receive, core.Kick, core.ReceiveSnapshot, clock, logger)
        {
            Fresh = () => core.Fresh,
            Greeted = core.Greeted,
            SnapshotDamaged = core.SnapshotDamaged,
        };
        core.Start(host, transport);
        replica = core;
        _ = core.Failure.ContinueWith(
            t => failure.TrySetResult(t.Result),
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default
        );
        transport.Start();
        var self = (int)options.ReplicaId.Value;
        raftThread = new Thread(RaftLoop) { IsBackground = true, Name = "fastsmr-raft-" + self };
        applyThread = new Thread(ApplyLoop) { IsBackground = true, Name = "fastsmr-apply-" + self };
        applyThread.Start();
        raftThread.Start();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken token)
    {
        if (replica is not { } core || Interlocked.Exchange(ref stopCalled, 1) != 0)
        {
            return;
        }

        core.RequestStop();
        raftSignal.Set();
        applySignal.Set();
        await Task.Run(
                () =>
                {
                    raftThread?.Join();
                    applyThread?.Join();

                    // A thread that was running the core or the apply loop inline finishes its round first.
                    var waitedFrom = core.NowUs();
                    while (core.Busy && core.NowUs() - waitedFrom < (long)StopWaitMax.TotalMicroseconds)
                    {
                        Thread.Sleep(1);
                    }
                },
                CancellationToken.None
            )
            .ConfigureAwait(false);
        if (transport is not null)
        {
            await transport.DisposeAsync().ConfigureAwait(false);
        }

        core.Close();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        raftSignal.Dispose();
        applySignal.Dispose();
    }

    /// <inheritdoc />
    public ValueTask<ProposeResult> ProposeAsync(ReadOnlyMemory<byte> batch, Term term, CancellationToken token) =>
        replica is { } core
            ? core.ProposeAsync(batch, term, token)
            : ValueTask.FromResult(new ProposeResult(ProposeOutcome.NotLeader, term, default));

    /// <inheritdoc />
    public ValueTask<LogIndex?> ReadBarrierAsync(CancellationToken token) =>
        replica is { } core ? core.ReadBarrierAsync(token) : ValueTask.FromResult<LogIndex?>(null);

    /// <inheritdoc />
    public bool ReadStillValid(Term term) => LeaseValid(term.Value);

    /// <inheritdoc cref="NativeReplica.LeaseValid" />
    public bool LeaseValid(long term) => replica?.LeaseValid(term) ?? false;

    /// <summary>The replication thread: ticks the core, and runs it for queued work when nobody else does.</summary>
    private void RaftLoop()
    {
        var core = replica!;
        while (!core.Stopping)
        {
            // A tick overdue means another thread is running the core right now (it ticks too): check back in a while.
            // Whole milliseconds, rounded up: the wait's resolution is 1 ms, and a sub-millisecond timeout returns at once,
            // which made this thread spin through the last millisecond before every tick (measured: 8-12 % of a core
            // on an idle leader, and ~15 MB/s of garbage from what that spin ran).
            var wait = core.NextTickUs - core.NowUs();
            raftSignal.Wait((int)Math.Clamp((wait + 999) / 1000, 1, NativeReplica.TickUs / 1000));
            raftSignal.Reset();
            core.TryDrive();
        }
    }

    /// <summary>The apply thread: applies when woken (dedicated mode) and, inline, picks up anything left behind.</summary>
    private void ApplyLoop()
    {
        var core = replica!;
        while (!core.Stopping)
        {
            applySignal.Wait(options.InlineDrive ? 100 : 1_000);
            applySignal.Reset();
            core.TryApply();
        }
    }

    private static string CurrentBootId()
    {
        const string source = "/proc/sys/kernel/random/boot_id";
        return File.Exists(source) ? File.ReadAllText(source).Trim() : "";
    }
}
