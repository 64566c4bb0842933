using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Log;
using FastSmr.Raft;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastSmr.Native;

/// <summary>
/// The native back-end: FastSmr.Raft's core, FastSmr.Log as its storage and the <see cref="PeerTransport"/> between
/// replicas, run to completion (decision 55): the thread that brings work — a peer's receive loop, the engine's
/// <see cref="ProposeAsync"/> — runs the core itself when no other thread does, handling each <see cref="Ready"/> in the
/// core's order (snapshot, hard state, entries appended to the log's buffer, messages sent with one non-blocking send per
/// peer), then lets go of the core, syncs what it appended with one fdatasync (while the followers work, and while
/// another thread may step their acknowledgements), and applies what committed. A ticker thread ticks the core every
/// <see cref="TickUs"/> µs; with <see cref="NativeBackendOptions.InlineDrive"/> off, it and an apply thread do all the work.
/// </summary>
public sealed partial class NativeBackend : IReplicationBackend
{
    private const long TickUs = 5_000;
    private const int InboundPerRound = 4_096;

    /// <summary>How long Stop waits for a thread that is inside a round (a sync included) to finish it.</summary>
    private static readonly TimeSpan StopWaitMax = TimeSpan.FromSeconds(30);
    private readonly NativeBackendOptions options;
    private readonly MonotonicClock clock;
    private readonly ILogger logger;
    private readonly string root;
    private readonly string snapshotDirectory;
    private readonly ConcurrentQueue<Inbound> inbound = new();
    private readonly ConcurrentQueue<ProposalWaiter> proposals = new();
    private readonly ConcurrentQueue<SnapshotHeader> compactions = new();
    private readonly ConcurrentQueue<ApplyItem> applyQueue = new();
    private readonly Queue<ProposalWaiter> waiting = new();
    private readonly Stack<ProposalWaiter> waiterPool = new();
    private readonly Dictionary<long, SnapshotHeader> stagedSnapshots = [];
    private readonly ManualResetEventSlim raftSignal;
    private readonly ManualResetEventSlim applySignal;
    private readonly Lock readGate = new();
    private IReplicationHost? host;
    private SegmentedLog? log;
    private RaftNode? node;
    private PeerTransport? transport;
    private Thread? raftThread;
    private Thread? applyThread;
    private volatile bool stopRequested;
    private int stopCalled;
    private volatile StrongBox<LeadershipInfo> leadership = new(new LeadershipInfo(ReplicaRole.Follower, default, ReplicaId.None));
    private long leaseUntilUs;
    private long leaseTerm;
    private long leaseCommitIndex; // written under readGate, with the lease; also what CommitIndex reports
    private long ownTermCommitted; // 1 once an entry of the current term is committed (a lease read needs it)
    private SnapshotHeader? currentSnapshot;
    private Exception? fatal;
    private bool rejoining;
    private bool fresh; // no term, no entry yet: said in the hello; cleared once the core has either
    private readonly HashSet<int> freshPeers = []; // under itself: peers whose last hello said they have no state
    private long rejoinLeaderCommit;
    private readonly TaskCompletionSource<Exception> failure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long snapshotsRefused;
    private const long DropReportIntervalUs = 1_000_000; // dropped peer messages are logged at most once a second
    private long droppedSeen; // the core's count of dropped peer messages, published for readers on other threads
    private long droppedReported; // that count as last logged, and when (at most once a second)
    private long droppedReportedAtUs;

    // Written only by the thread holding `applying` (NativeBackend.Apply.cs).
    private long lastApplied;
    private ClusterConfig applyConfig = null!;
    private long lastSnapshotIndex;
    private long bytesSinceSnapshot;

    // Who runs what (NativeBackend.Drive.cs): one thread drives the core at a time, one applies.
    private int driving;
    private int applying;
    private int active; // threads inside Drive or ApplyAll, syncs after letting go of the core included (Stop waits for 0)
    private long nextTick;
    private (LogIndex Index, Term Term) flushTarget; // written and read only by the thread holding `driving`
    private readonly ConcurrentQueue<(LogIndex Index, Term Term)> persistedReports = new();
    private TaskCompletionSource readWaiters = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the back-end; nothing runs until <see cref="StartAsync"/>.</summary>
    public NativeBackend(NativeBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        clock = new MonotonicClock(options.Time);
        logger = (options.LoggerFactory ?? NullLoggerFactory.Instance).CreateLogger<NativeBackend>();
        root = Path.GetFullPath(options.DataDirectory);
        snapshotDirectory = Path.Combine(root, "snapshots");
        var spin = options.SpinIterations;
        raftSignal = new ManualResetEventSlim(false, Math.Min(spin, 2047));
        applySignal = new ManualResetEventSlim(false, Math.Min(spin, 2047));
    }

    /// <inheritdoc />
    public LeadershipInfo Leadership => leadership.Value;

    /// <inheritdoc />
    public LogIndex CommitIndex => new(Volatile.Read(ref leaseCommitIndex));

    /// <summary>
    /// True while this replica neither votes nor campaigns until it has caught up: after an unclean machine restart in
    /// memory mode, and when it starts with no state at all (a new or wiped data directory) until a majority of the
    /// members turn out to be as new (a new cluster).
    /// </summary>
    public bool Rejoining => Volatile.Read(ref rejoining);

    /// <inheritdoc />
    public Task<Exception> Failure => failure.Task;

    /// <summary>How many snapshots received from peers were deleted because they do not restore.</summary>
    public long SnapshotsRefused => Interlocked.Read(ref snapshotsRefused);

    /// <summary>How many peer messages the core refused because no correct replica sends them (forged or broken peers).</summary>
    public long RefusedMessages => Volatile.Read(ref droppedSeen);

    /// <summary>Messages the transport dropped (peer unreachable or too far behind).</summary>
    public long DroppedMessages => transport?.Dropped ?? 0;

    private long NowUs() => clock.NowUs();

    /// <inheritdoc />
    public Task StartAsync(IReplicationHost host, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (this.host is not null)
        {
            throw new InvalidOperationException("already started");
        }

        this.host = host;
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(snapshotDirectory);
        foreach (var leftover in Directory.EnumerateFiles(snapshotDirectory, "*.tmp"))
        {
            SnapshotFile.TryDelete(leftover);
        }

        rejoining = CheckBootId();
        log = SegmentedLog.Open(
            Path.Combine(root, "log"),
            new LogOptions
            {
                SegmentSize = options.SegmentBytes,
                ClusterId = options.ClusterId,
                NodeId = options.ReplicaId,
            }
        );
        node = Recover(log, host);
        var self = (int)options.ReplicaId.Value;
        CheckFresh(node);
        transport = new PeerTransport(options, snapshotDirectory, OnReceived, Kick, OnSnapshotReceived, clock, logger)
        {
            Fresh = () => Volatile.Read(ref fresh),
            Greeted = OnGreeted,
        };
        transport.Start();
        raftThread = new Thread(RaftLoop) { IsBackground = true, Name = "fastsmr-raft-" + self };
        applyThread = new Thread(ApplyLoop) { IsBackground = true, Name = "fastsmr-apply-" + self };
        applyThread.Start();
        raftThread.Start();
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken token)
    {
        if (host is null || Interlocked.Exchange(ref stopCalled, 1) != 0)
        {
            return;
        }

        stopRequested = true;
        raftSignal.Set();
        applySignal.Set();
        await Task.Run(
                () =>
                {
                    raftThread?.Join();
                    applyThread?.Join();

                    // A thread that was running the core or the apply loop inline finishes its round first.
                    var waitedFrom = clock.NowUs();
                    while (Volatile.Read(ref active) != 0 && clock.ElapsedUs(waitedFrom) < (long)StopWaitMax.TotalMicroseconds)
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

        // Whatever was not decided by now is unknown to the engine (it may still commit on the other replicas).
        while (waiting.TryDequeue(out var waiter))
        {
            waiter.TryComplete(ProposeOutcome.Unknown);
        }

        while (proposals.TryDequeue(out var waiter))
        {
            waiter.TryComplete(ProposeOutcome.NotLeader);
        }

        log?.Dispose();
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, ReplicaId.None));
        readWaiters.TrySetResult();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        raftSignal.Dispose();
        applySignal.Dispose();
    }

    private void Fail(Exception e)
    {
        // A storage failure (a failed fdatasync, a full disk) is fatal to this replica: it stops taking part rather than
        // acknowledge what it may not hold. The others carry on; an operator restarts it.
        if (stopRequested && e is ObjectDisposedException)
        {
            return; // stopping: the log was closed under a round that was finishing
        }

        lock (readGate)
        {
            if (fatal is not null)
            {
                return;
            }

            fatal = e;
        }

        NativeLog.Fatal(logger, options.ReplicaId, e);
        stopRequested = true;
        applySignal.Set();
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, ReplicaId.None));
        host?.OnLeadershipChanged(Leadership);
        WakeReaders();
        failure.TrySetResult(e);
    }

    private readonly record struct Inbound(Message Message, long ReceivedUs, SnapshotHeader? StagedSnapshot);

    private readonly record struct ApplyItem(Entry Entry, SnapshotHeader? Restore);
}
