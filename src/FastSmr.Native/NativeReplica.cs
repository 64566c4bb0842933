using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;
using Microsoft.Extensions.Logging;

namespace FastSmr.Native;

/// <summary>
/// The native back-end without its threads (decision 92): FastSmr.Raft's core over an <see cref="IReplicaStorage"/>, an
/// <see cref="IMessageBus"/> and the clock of the options' <see cref="TimeProvider"/>, run to completion (decision 55)
/// by whichever thread calls in — a peer's receive (<see cref="Receive"/> then <see cref="Kick"/>), a proposal, the
/// ticker (<see cref="TryDrive"/> at <see cref="NextTickUs"/>). Each <see cref="Ready"/> is handled in the core's order
/// (snapshot, hard state, entries appended, messages sent), then the core is let go, what was appended is flushed with
/// one sync (while the followers work, and while another thread may step their acknowledgements), and what committed is
/// applied. <see cref="NativeBackend"/> runs it on real threads with FastSmr.Log and the peer transport; a simulator
/// runs it on one thread with simulated ones.
/// </summary>
public sealed partial class NativeReplica
{
    /// <summary>How often the core is ticked, in microseconds.</summary>
    public const long TickUs = 5_000;
    private const int InboundPerRound = 4_096;
    private readonly NativeBackendOptions options;
    private readonly IReplicaStorage storage;
    private readonly MonotonicClock clock;
    private readonly ILogger logger;
    private readonly string bootId;
    private readonly Action wakeDriver;
    private readonly Action wakeApplier;
    private readonly ConcurrentQueue<Inbound> inbound = new();
    private readonly ConcurrentQueue<ProposalWaiter> proposals = new();
    private readonly ConcurrentQueue<SnapshotHeader> compactions = new();
    private readonly ConcurrentQueue<ApplyItem> applyQueue = new();
    private readonly Queue<ProposalWaiter> waiting = new();
    private readonly Stack<ProposalWaiter> waiterPool = new();
    private readonly Dictionary<long, SnapshotHeader> stagedSnapshots = [];
    private readonly Lock readGate = new();
    private IReplicationHost? host;
    private IMessageBus? bus;
    private RaftNode? node;
    private volatile bool stopRequested;
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

    // Written only by the thread holding `applying` (NativeReplica.Apply.cs).
    private long lastApplied;
    private ClusterConfig applyConfig = null!;
    private long lastSnapshotIndex;
    private long bytesSinceSnapshot;

    // Who runs what (NativeReplica.Drive.cs): one thread drives the core at a time, one applies.
    private int driving;
    private int applying;
    private int active; // threads inside Drive or ApplyAll, syncs after letting go of the core included (Stop waits for 0)
    private long nextTick;
    private (LogIndex Index, Term Term) flushTarget; // written and read only by the thread holding `driving`
    private readonly ConcurrentQueue<(LogIndex Index, Term Term)> persistedReports = new();
    private TaskCompletionSource readWaiters = new(TaskCreationOptions.RunContinuationsAsynchronously); // see NewReadWaiters

    /// <summary>Creates the replica over <paramref name="storage"/>, which it owns; nothing runs until <see cref="Start"/>.</summary>
    /// <param name="options">Checked options; <see cref="ReplicationBackendOptions.Time"/> is its clock.</param>
    /// <param name="storage">The log, hard state and snapshots.</param>
    /// <param name="bootId">The running machine's boot id (memory mode's unclean-restart rule).</param>
    /// <param name="logger">Where events go.</param>
    /// <param name="wakeDriver">Wakes the replication thread (used when <see cref="NativeBackendOptions.InlineDrive"/> is off).</param>
    /// <param name="wakeApplier">Wakes the apply thread (the same; and when the replica stops).</param>
    public NativeReplica(
        NativeBackendOptions options,
        IReplicaStorage storage,
        string bootId,
        ILogger logger,
        Action wakeDriver,
        Action wakeApplier
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(storage);
        ArgumentNullException.ThrowIfNull(bootId);
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(wakeDriver);
        ArgumentNullException.ThrowIfNull(wakeApplier);
        this.options = options;
        this.storage = storage;
        this.bootId = bootId;
        this.logger = logger;
        this.wakeDriver = wakeDriver;
        this.wakeApplier = wakeApplier;
        clock = new MonotonicClock(options.Time);
    }

    /// <summary>The current leadership view (role, term, leader id).</summary>
    public LeadershipInfo Leadership => leadership.Value;

    /// <summary>The commit index published with the lease.</summary>
    public LogIndex CommitIndex => new(Volatile.Read(ref leaseCommitIndex));

    /// <summary>
    /// True while this replica neither votes nor campaigns until it has caught up: after an unclean machine restart in
    /// memory mode, and when it starts with no state at all (a new or wiped data directory) until a majority of the
    /// members turn out to be as new (a new cluster).
    /// </summary>
    public bool Rejoining => Volatile.Read(ref rejoining);

    /// <summary>Whether this replica has no state yet (term 0, empty log): said in every message connection's hello.</summary>
    public bool Fresh => Volatile.Read(ref fresh);

    /// <summary>Completes, with the cause, when the replica has stopped itself for good (its storage failed).</summary>
    public Task<Exception> Failure => failure.Task;

    /// <summary>How many snapshots received from peers were deleted because they do not restore.</summary>
    public long SnapshotsRefused => Interlocked.Read(ref snapshotsRefused);

    /// <summary>How many peer messages the core refused because no correct replica sends them (forged or broken peers).</summary>
    public long RefusedMessages => Volatile.Read(ref droppedSeen);

    /// <summary>When the core is due to be ticked next (<see cref="TryDrive"/> then), on the clock of <see cref="NowUs"/>.</summary>
    public long NextTickUs => Volatile.Read(ref nextTick);

    /// <summary>Whether a thread is inside a drive or an apply round (a sync after letting go of the core included).</summary>
    public bool Busy => Volatile.Read(ref active) != 0;

    /// <summary>Whether a stop was requested or the replica failed: it takes no more work.</summary>
    public bool Stopping => stopRequested;

    /// <summary>
    /// Whether awaits inside the replica (a lease read waiting for its lease) resume on the caller's scheduler: false (the
    /// default) in production; true under a simulator's single-threaded scheduler, so that a run is deterministic.
    /// </summary>
    public bool ResumeOnCapturedContext { get; init; }

    /// <summary>
    /// Test-only: called at each scheduling point of the run-to-completion protocol (queues filled, the core taken and
    /// let go, the sync done, the re-check), where a controlled scheduler may switch threads. Null in production.
    /// </summary>
    internal Action<string>? SchedulingPoint { get; init; }

    /// <summary>A test-only bug to inject (the simulator's proof that it catches it).</summary>
    internal NativeBug Bug { get; init; }

    /// <summary>Whether anything waits in the replica's queues (an idle replica with work left behind lost a wake-up).</summary>
    internal bool HasQueuedWork =>
        !inbound.IsEmpty || !proposals.IsEmpty || !compactions.IsEmpty || !persistedReports.IsEmpty || !applyQueue.IsEmpty;

    /// <summary>Now, in microseconds, on the replica's clock.</summary>
    public long NowUs() => clock.NowUs();

    /// <summary>Recovers the core from <see cref="IReplicaStorage"/> and the newest snapshot; then messages may arrive.</summary>
    public void Start(IReplicationHost host, IMessageBus bus)
    {
        ArgumentNullException.ThrowIfNull(host);
        ArgumentNullException.ThrowIfNull(bus);
        if (this.host is not null)
        {
            throw new InvalidOperationException("already started");
        }

        this.host = host;
        this.bus = bus;
        readWaiters = NewReadWaiters();
        rejoining = CheckBootId();
        node = Recover(host);
        CheckFresh(node);
    }

    /// <summary>From now on nothing new runs: a round in progress finishes (wait for <see cref="Busy"/> to clear).</summary>
    public void RequestStop() => stopRequested = true;

    /// <summary>
    /// Ends the replica once no thread is inside it any more: undecided proposals are answered (unknown if appended, not
    /// leader otherwise), the storage is closed, and the view says stopped.
    /// </summary>
    public void Close()
    {
        stopRequested = true;

        // Whatever was not decided by now is unknown to the engine (it may still commit on the other replicas).
        while (waiting.TryDequeue(out var waiter))
        {
            waiter.TryComplete(ProposeOutcome.Unknown);
        }

        while (proposals.TryDequeue(out var waiter))
        {
            waiter.TryComplete(ProposeOutcome.NotLeader);
        }

        storage.Dispose();
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, ReplicaId.None));
        readWaiters.TrySetResult();
    }

    private void Point(string where) => SchedulingPoint?.Invoke(where);

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
        wakeApplier();
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, ReplicaId.None));
        host?.OnLeadershipChanged(Leadership);
        WakeReaders();
        failure.TrySetResult(e);
    }

    private readonly record struct Inbound(Message Message, long ReceivedUs, SnapshotHeader? StagedSnapshot);

    private readonly record struct ApplyItem(Entry Entry, SnapshotHeader? Restore, bool Retake = false);
}
