using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Log;
using FastSmr.Raft;
using ProposeResult = FastSmr.Engine.ProposeResult;
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

    /// <summary>How long Stop waits for a thread that is inside a round (a sync included) to finish it.</summary>
    private static readonly TimeSpan StopWaitMax = TimeSpan.FromSeconds(30);
    private readonly NativeBackendOptions options;
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
    private volatile StrongBox<LeadershipInfo> leadership = new(new LeadershipInfo(ReplicaRole.Follower, default, 0));
    private long leaseUntilUs;
    private long leaseTerm;
    private long leaseCommitIndex; // written under readGate, with the lease; also what CommitIndex reports
    private long ownTermCommitted; // 1 once an entry of the current term is committed (a lease read needs it)
    private SnapshotHeader? currentSnapshot;
    private Exception? fatal;
    private bool rejoining;
    private long rejoinLeaderCommit;
    private TaskCompletionSource readWaiters = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Creates the back-end; nothing runs until <see cref="StartAsync"/>.</summary>
    public NativeBackend(NativeBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
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

    /// <summary>True while this replica, after an unclean machine restart in memory mode, neither votes nor campaigns until it has caught up.</summary>
    public bool Rejoining => Volatile.Read(ref rejoining);

    /// <summary>Messages the transport dropped (peer unreachable or too far behind).</summary>
    public long DroppedMessages => transport?.Dropped ?? 0;

    private static long NowUs() => (long)(Stopwatch.GetTimestamp() * (1_000_000.0 / Stopwatch.Frequency));

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
        log = SegmentedLog.Open(Path.Combine(root, "log"), new LogOptions { SegmentSize = options.SegmentBytes, ClusterId = options.ClusterId, NodeId = options.ReplicaId });
        node = Recover(log, host);
        var self = (int)options.ReplicaId;
        transport = new PeerTransport(options, snapshotDirectory, OnReceived, Kick, OnSnapshotReceived, NowUs, logger);
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
                var waited = Stopwatch.StartNew();
                while (Volatile.Read(ref active) != 0 && waited.Elapsed < StopWaitMax)
                {
                    Thread.Sleep(1);
                }
            },
            CancellationToken.None).ConfigureAwait(false);
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
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, 0));
        readWaiters.TrySetResult();
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync(CancellationToken.None).ConfigureAwait(false);
        raftSignal.Dispose();
        applySignal.Dispose();
    }

    /// <inheritdoc />
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

    /// <inheritdoc />
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
            await changed.WaitAsync(token).ConfigureAwait(false);
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

    private bool LeaseValidLocked(long term) => !stopRequested && leaseTerm == term && ownTermCommitted == 1 && NowUs() < leaseUntilUs;

    private void OnReceived(Message message, long receivedUs) => inbound.Enqueue(new Inbound(message, receivedUs, null));

    private bool OnSnapshotReceived(Message message, SnapshotHeader staged)
    {
        if (stopRequested)
        {
            return false;
        }

        inbound.Enqueue(new Inbound(message, NowUs(), staged));
        Kick();
        return true; // the replication thread owns the staged file now
    }

    private bool CheckBootId()
    {
        // memory mode (DESIGN.md): after an unclean OS shutdown — the boot id stored here differs from the running
        // kernel's — what this replica acknowledged may be lost, so it must not vote or campaign until it caught up.
        // The stored id is replaced only once it has, so a restart while rejoining rejoins again.
        var previous = File.Exists(BootIdPath) ? File.ReadAllText(BootIdPath).Trim() : null;
        var current = CurrentBootId();
        var rebooted = options.Durability == DurabilityMode.Memory && previous is not null && previous != current;
        if (rebooted)
        {
            Log.Rejoining(logger, options.ReplicaId);
        }
        else if (previous != current)
        {
            StoreBootId();
        }

        return rebooted;
    }

    private string BootIdPath => Path.Combine(root, "boot-id");

    private static string CurrentBootId()
    {
        const string source = "/proc/sys/kernel/random/boot_id";
        return File.Exists(source) ? File.ReadAllText(source).Trim() : "";
    }

    private void StoreBootId()
    {
        var temporary = BootIdPath + ".tmp";
        File.WriteAllText(temporary, CurrentBootId());
        DurableFile.Commit(temporary, BootIdPath);
    }

    private RaftNode Recover(SegmentedLog storage, IReplicationHost replicationHost)
    {
        var snapshot = SnapshotFile.FindLatest(snapshotDirectory, (path, e) => Log.SnapshotSkipped(logger, path, e.Message));
        if (snapshot is not null)
        {
            using var stream = new FileStream(snapshot.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            stream.Position = snapshot.StateOffset;
            replicationHost.RestoreSnapshot(stream, new LogIndex(snapshot.Index), new Term(snapshot.Term));
            currentSnapshot = snapshot;
        }

        var meta = storage.Metadata;
        var snapshotIndex = snapshot?.Index ?? 0;
        var snapshotTerm = snapshot?.Term ?? 0;
        if (meta.CompactedIndex > snapshotIndex)
        {
            throw new InvalidDataException(root + ": the log is compacted up to " + meta.CompactedIndex + " but the newest intact snapshot covers only " + snapshotIndex);
        }

        if (snapshotIndex > storage.LastIndex || (snapshotIndex >= storage.FirstIndex && storage.TermAt(snapshotIndex) != snapshotTerm))
        {
            // The snapshot was installed but the log's reset did not finish: the log holds nothing the snapshot keeps.
            storage.Reset(snapshotIndex, snapshotTerm);
        }

        var entries = new List<Entry>();
        var first = Math.Max(storage.FirstIndex, snapshotIndex + 1);
        if (first <= storage.LastIndex)
        {
            foreach (var record in storage.Read(first, storage.LastIndex))
            {
                entries.Add(new Entry(record.Index, record.Term, ToEntryType(record.Type), record.Payload.ToArray()));
            }
        }

        var voters = options.Members.Select(m => (int)m.Id).ToList();
        var raftOptions = new RaftOptions
        {
            Id = (int)options.ReplicaId,
            Voters = voters,
            ElectionTimeoutMinUs = options.ElectionTimeoutMs * 1000L,
            HeartbeatIntervalUs = options.HeartbeatIntervalMs * 1000L,
            Seed = (ulong)Stopwatch.GetTimestamp() ^ ((ulong)options.ReplicaId << 48),
        };
        var commit = Math.Max(Math.Min(meta.CommitIndex, storage.LastIndex), snapshotIndex);
        var core = new RaftNode(raftOptions, new HardState(meta.Term, (int)meta.VotedFor, commit), entries, snapshotIndex, snapshotTerm, snapshot?.Config);
        core.Persisted(storage.LastIndex, storage.LastTerm); // everything on disk after recovery is durable
        lastApplied = replicationHost.AppliedIndex.Value;
        applyConfig = snapshot?.Config ?? new ClusterConfig(voters);
        lastSnapshotIndex = snapshotIndex;
        return core;
    }

    private static EntryType ToEntryType(LogRecordType type) => type switch
    {
        LogRecordType.NoOp => EntryType.NoOp,
        LogRecordType.Config => EntryType.Config,
        _ => EntryType.Normal,
    };

    private static LogRecordType ToRecordType(EntryType type) => type switch
    {
        EntryType.NoOp => LogRecordType.NoOp,
        EntryType.Config => LogRecordType.Config,
        _ => LogRecordType.Entry,
    };

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

        Log.Fatal(logger, options.ReplicaId, e);
        stopRequested = true;
        applySignal.Set();
        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, 0));
        host?.OnLeadershipChanged(Leadership);
        WakeReaders();
    }

    private readonly record struct Inbound(Message Message, long ReceivedUs, SnapshotHeader? StagedSnapshot);

    private readonly record struct ApplyItem(Entry Entry, SnapshotHeader? Restore);

    private static partial class Log
    {
        [LoggerMessage(EventId = 110, Level = LogLevel.Warning, Message = "replica {ReplicaId}: the machine restarted uncleanly since this replica last ran in memory mode; it rejoins as a non-voter until it has caught up")]
        public static partial void Rejoining(ILogger logger, uint replicaId);

        [LoggerMessage(EventId = 111, Level = LogLevel.Information, Message = "replica {ReplicaId}: caught up after the unclean restart; voting again")]
        public static partial void Rejoined(ILogger logger, uint replicaId);

        [LoggerMessage(EventId = 112, Level = LogLevel.Warning, Message = "snapshot {Path} skipped: {Reason}")]
        public static partial void SnapshotSkipped(ILogger logger, string path, string reason);

        [LoggerMessage(EventId = 113, Level = LogLevel.Critical, Message = "replica {ReplicaId} stops: storage failed")]
        public static partial void Fatal(ILogger logger, uint replicaId, Exception exception);

        [LoggerMessage(EventId = 114, Level = LogLevel.Information, Message = "replica {ReplicaId}: snapshot at {Index} installed from the leader")]
        public static partial void SnapshotInstalled(ILogger logger, uint replicaId, long index);

        [LoggerMessage(EventId = 115, Level = LogLevel.Debug, Message = "replica {ReplicaId}: snapshot at {Index} taken, log compacted")]
        public static partial void SnapshotTaken(ILogger logger, uint replicaId, long index);
    }
}
