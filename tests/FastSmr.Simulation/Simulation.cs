using FastSmr.Raft;

namespace FastSmr.Simulation;

/// <summary>What one seeded run found.</summary>
internal sealed record SimResult(int Seed, bool Passed, string? Failure, long FailureStep, ulong TraceHash, SimStats Stats);

/// <summary>Totals of one run.</summary>
internal sealed record SimStats(int Faults, int Elections, long Commits, int Proposals, int Acknowledged, int Dropped, long Steps, int Crashes, int Compactions = 0, int Installs = 0, int ConfigChanges = 0);

/// <summary>Settings of a run (the seed decides everything else).</summary>
internal sealed record SimSettings
{
    public int Replicas { get; init; } = 3;

    /// <summary>Faults and proposals happen before this; then the network heals and liveness is checked.</summary>
    public long FaultPhaseUs { get; init; } = 30_000_000;

    /// <summary>After the fault phase, every pending proposal must be resolved and a leader must exist within this.</summary>
    public long LivenessBoundUs { get; init; } = 15_000_000;

    public int ProposalsMin { get; init; } = 200;

    public RaftBug Bug { get; init; }

    /// <summary>Print every event (for replaying one seed).</summary>
    public TextWriter? Trace { get; init; }
}

/// <summary>
/// One seeded run: N replicas of <see cref="RaftNode"/> over a simulated network (delay, drop, duplication, reordering,
/// partitions — symmetric, one-way, isolated leader), simulated disks (latency; a crash loses unsynced writes or keeps a
/// torn prefix of them), drifting clocks, crashes and restarts. Every invariant is checked after every step.
/// </summary>
internal sealed partial class Simulation
{
    private const long ElectionTimeoutMinUs = 300_000;
    private const long HeartbeatUs = 50_000;
    private const long TickUs = 10_000;
    private const double Rho = 0.01;

    private readonly SimSettings settings;
    private readonly int seed;
    private readonly SimRandom rng;
    private readonly PriorityQueue<SimEvent, (long, long)> events = new();
    private readonly Replica[] replicas;
    private readonly Dictionary<(int From, int To), int> blocked = []; // link -> how many active faults cut it
    private readonly Dictionary<int, List<(int From, int To)>> cutsByFault = [];
    private readonly Dictionary<Term, int> leaderOfTerm = [];
    private readonly Dictionary<(LogIndex Index, Term Term), (ulong Data, Term PrevTerm)> entriesSeen = [];
    private readonly List<(Term Term, ulong Data)> committed = [(Term.Zero, 0)]; // committed[i]: the entry committed at index i
    private readonly List<SimProposal> proposals = [];
    private readonly Dictionary<ulong, SimProposal> proposalsByData = [];
    private long sequence;
    private long step;
    private long now;
    private ulong trace = 14695981039346656037UL;
    private int lossyFaults;
    private int slowDiskFaults;
    private int crashNewLeaderFaults;
    private int crashAtFirstCommitFaults;
    private readonly int inflightMax;
    private readonly int compactEvery;
    private readonly long messageBytesMax;
    private int faults;
    private int elections;
    private int crashes;
    private int compactions;
    private int installs;
    private int configChanges;
    private string? failure;

    public Simulation(int seed, SimSettings settings)
    {
        this.seed = seed;
        this.settings = settings;
        rng = new SimRandom(((ulong)seed * 0x9E3779B97F4A7C15UL) + 1);
        inflightMax = 1 + rng.Below(8);
        messageBytesMax = rng.Below(3) switch { 0 => 8, 1 => 64, _ => 4096 };
        compactEvery = rng.Below(3) switch { 0 => 0, 1 => 10, _ => 60 }; // never, often, now and then
        replicas = new Replica[settings.Replicas];
        for (var i = 0; i < replicas.Length; i++)
        {
            // Clock rates within ±ρ/2 of true time, so that any two differ by less than ρ.
            var rate = 1 + ((rng.Unit() - 0.5) * Rho * 0.9);
            replicas[i] = new Replica(i + 1, rate, rng.Between(0, 1_000_000_000));
        }
    }

    private sealed class Replica(int id, double clockRate, long clockOffset)
    {
        public int Id { get; } = id;

        /// <summary>The id the Raft core knows this replica by.</summary>
        public ReplicaId RaftId { get; } = new((uint)id);

        public double ClockRate { get; } = clockRate;

        public long ClockOffset { get; } = clockOffset;

        public RaftNode? Node { get; set; }

        public int Incarnation { get; set; }

        public bool WasLeader { get; set; }

        public Term LeaderTerm { get; set; }

        public LogIndex CommitAtElection { get; set; }

        // The disk: what the page cache holds, and what survives a crash.
        public HardState DurableHard { get; set; }

        // Entries after the snapshot: Written[i] and Synced[i] have index SnapshotIndex + 1 + i.
        public List<Entry> Written { get; } = [];

        public List<Entry> Synced { get; } = [];

        public LogIndex SnapshotIndex { get; set; }

        public Term SnapshotTerm { get; set; }

        /// <summary>Bumped by every truncation and snapshot install: a sync issued before it covers none of what follows.</summary>
        public int DiskGeneration { get; set; }

        public ClusterConfig? SnapshotConfig { get; set; }

        public long SyncsPending { get; set; }

        public long LastSyncDoneAt { get; set; }

        // What this incarnation applied, in order (a restart re-applies from the start).
        public LogIndex Applied { get; set; }

        public long LocalNow(long trueUs) => (long)(trueUs * ClockRate) + ClockOffset;
    }

    private sealed class SimProposal(ulong data, int replica, LogIndex index, Term term)
    {
        public ulong Data { get; } = data;

        public int Replica { get; } = replica;

        public LogIndex Index { get; } = index;

        public Term Term { get; } = term;

        public bool Committed { get; set; }

        public bool Dropped { get; set; }

        public bool Acknowledged { get; set; }
    }

    private enum EventKind
    {
        Tick,
        Deliver,
        SyncDone,
        Propose,
        FaultStart,
        FaultEnd,
        Restart,
        Crash,
    }

    private sealed record SimEvent(EventKind Kind, int Replica, Message? Message = null, long Index = 0, long Term = 0, int Incarnation = 0, int Fault = 0);

    public SimResult Run()
    {
        foreach (var replica in replicas)
        {
            Start(replica);
        }

        ScheduleWorkload();
        ScheduleFaults();
        var end = settings.FaultPhaseUs + settings.LivenessBoundUs;
        while (failure is null && events.TryDequeue(out var next, out var at))
        {
            if (at.Item1 > end)
            {
                break;
            }

            now = at.Item1;
            step++;
            Handle(next);
            if (failure is null)
            {
                CheckInvariants();
            }
        }

        if (failure is null)
        {
            CheckLiveness();
        }

        if (failure is null && faults < 3)
        {
            Fail($"SHALLOW: only {faults} faults (every seed must inject at least 3)");
        }

        var stats = new SimStats(faults, elections, committed.Count - 1, proposals.Count, proposals.Count(p => p.Acknowledged), proposals.Count(p => p.Dropped), step, crashes, compactions, installs, configChanges);
        return new SimResult(seed, failure is null, failure, step, trace, stats);
    }

    private void Schedule(long at, SimEvent e) => events.Enqueue(e, (at, sequence++));

    private void Start(Replica replica)
    {
        replica.Incarnation++;
        var options = new RaftOptions
        {
            Id = replica.RaftId,
            Voters = [.. replicas.Select(r => r.RaftId)],
            ElectionTimeoutMinUs = ElectionTimeoutMinUs,
            HeartbeatIntervalUs = HeartbeatUs,
            ClockDriftBound = Rho,
            // Varied per seed: one entry per append up to many, one append in flight up to eight.
            InflightMessagesMax = inflightMax,
            MessageBytesMax = messageBytesMax,
            Seed = ((ulong)seed << 20) ^ ((ulong)replica.Id << 8) ^ (ulong)replica.Incarnation,
            Bug = settings.Bug,
        };
        replica.Node = new RaftNode(options, replica.DurableHard, [.. replica.Synced], replica.SnapshotIndex, replica.SnapshotTerm, replica.SnapshotConfig);
        replica.Applied = replica.SnapshotIndex; // the state machine starts from the snapshot
        replica.WasLeader = false;
        foreach (var entry in replica.Synced)
        {
            NoteEntry(replica, entry);
        }

        Schedule(now + rng.Between(0, TickUs), new SimEvent(EventKind.Tick, replica.Id, Incarnation: replica.Incarnation));
    }

    private void Crash(Replica replica)
    {
        crashes++;
        Record("crash", replica.Id, 0, 0);
        replica.Node = null;
        // Unsynced writes are lost, except that a torn prefix of them may survive (the log's recovery keeps a prefix).
        var keep = replica.Written.Count > replica.Synced.Count && rng.Chance(0.3) ? rng.Below(replica.Written.Count - replica.Synced.Count + 1) : 0;
        replica.Written.RemoveRange(replica.Synced.Count + keep, replica.Written.Count - replica.Synced.Count - keep);
        replica.Synced.Clear();
        replica.Synced.AddRange(replica.Written);
        replica.SyncsPending = 0;
    }

    private void Handle(SimEvent e)
    {
        var replica = e.Replica > 0 ? replicas[e.Replica - 1] : null;
        switch (e.Kind)
        {
            case EventKind.Tick when replica!.Node is not null && e.Incarnation == replica.Incarnation:
                replica.Node.Tick(replica.LocalNow(now));
                Drain(replica);
                Schedule(now + TickUs, e);
                break;
            case EventKind.Deliver when replica!.Node is not null:
                Record("deliver", e.Replica, (long)e.Message!.Type, e.Message.Term.Value);
                replica.Node.Step(e.Message, replica.LocalNow(now));
                NoteLeadership(replica);
                Drain(replica);
                CrashAtFirstCommit(replica);
                break;
            case EventKind.SyncDone when replica!.Node is not null && e.Incarnation == replica.Incarnation:
                CompleteSync(replica, new LogIndex(e.Index), new Term(e.Term), e.Fault);
                break;
            case EventKind.Propose:
                Propose(e.Index);
                break;
            case EventKind.FaultStart:
                StartFault(e.Fault, e.Index);
                break;
            case EventKind.FaultEnd:
                EndFault(e.Fault, e.Index);
                break;
            case EventKind.Crash when replica!.Node is not null && e.Incarnation == replica.Incarnation:
                Crash(replica);
                Schedule(now + rng.Between(50_000, 1_500_000), new SimEvent(EventKind.Restart, replica.Id));
                break;
            case EventKind.Restart when replica!.Node is null:
                Record("restart", replica.Id, 0, 0);
                Start(replica);
                break;
        }
    }

    /// <summary>Handles every Ready of a replica in the order its rules demand.</summary>
    private void Drain(Replica replica)
    {
        var node = replica.Node!;
        for (var rounds = 0; node.HasReady && rounds < 1000; rounds++)
        {
            var ready = node.GetReady();
            // 1. Hard state durable before any message goes out.
            if (ready.HardStateChanged || ready.HardState.Commit != replica.DurableHard.Commit)
            {
                replica.DurableHard = ready.HardState;
            }

            // 0. A snapshot from the leader: its state must be committed state; it replaces the log, durably.
            if (ready.Snapshot is { } snapshot)
            {
                if (snapshot.Index.Value >= committed.Count || committed[(int)snapshot.Index.Value].Term != snapshot.Term)
                {
                    Fail($"SAFETY: replica {replica.Id} was sent a snapshot at {snapshot.Index} term {snapshot.Term} that is not committed state");
                    return;
                }

                Record("install", replica.Id, snapshot.Index.Value, snapshot.Term.Value);
                installs++;
                replica.Applied = snapshot.Index;
                replica.SnapshotIndex = snapshot.Index;
                replica.SnapshotTerm = snapshot.Term;
                replica.SnapshotConfig = snapshot.Config;
                replica.Written.Clear();
                replica.Synced.Clear();
                replica.DiskGeneration++;
            }

            // 2. Entries: a truncation is durable at once (FastSmr.Log's TruncateSuffix); the write syncs later.
            if (ready.Entries.Count > 0)
            {
                var first = (int)(ready.Entries[0].Index - replica.SnapshotIndex); // 1-based position after the snapshot
                if (first <= replica.Written.Count)
                {
                    replica.DiskGeneration++;
                    replica.Written.RemoveRange(first - 1, replica.Written.Count - first + 1);
                    if (replica.Synced.Count >= first)
                    {
                        replica.Synced.RemoveRange(first - 1, replica.Synced.Count - first + 1);
                    }
                }

                foreach (var entry in ready.Entries)
                {
                    if (entry.Index != replica.SnapshotIndex + replica.Written.Count + 1)
                    {
                        Fail($"replica {replica.Id} was asked to write entry {entry.Index} after {replica.SnapshotIndex + replica.Written.Count}");
                        return;
                    }

                    replica.Written.Add(entry);
                    NoteEntry(replica, entry);
                }

                var last = ready.Entries[^1];
                var done = Math.Max(replica.LastSyncDoneAt, now + rng.Between(100, slowDiskFaults > 0 ? 50_000 : 3_000));
                replica.LastSyncDoneAt = done;
                replica.SyncsPending++;
                Schedule(done, new SimEvent(EventKind.SyncDone, replica.Id, Index: last.Index.Value, Term: last.Term.Value, Incarnation: replica.Incarnation, Fault: replica.DiskGeneration));
            }

            // 3. Messages.
            foreach (var message in ready.Messages)
            {
                Send(message);
            }

            // 4. Apply.
            foreach (var entry in ready.CommittedEntries)
            {
                Apply(replica, entry);
                if (failure is not null)
                {
                    return;
                }
            }

            node.Advance(ready);
        }

        MaybeCompact(replica);
    }

    /// <summary>The host's snapshot policy: every <see cref="compactEvery"/> applied entries, a snapshot, durable at once.</summary>
    private void MaybeCompact(Replica replica)
    {
        var node = replica.Node;
        if (compactEvery == 0 || node is null || replica.Applied - replica.SnapshotIndex < compactEvery || replica.Applied > node.StableIndex)
        {
            return;
        }

        var index = replica.Applied;
        var term = node.TermAt(index);
        node.Compact(index);
        var drop = (int)(index - replica.SnapshotIndex);
        replica.SnapshotIndex = index;
        replica.SnapshotTerm = term;
        replica.SnapshotConfig = node.SnapshotConfig;
        replica.Written.RemoveRange(0, Math.Min(drop, replica.Written.Count));
        replica.Synced.RemoveRange(0, Math.Min(drop, replica.Synced.Count));
        Record("compact", replica.Id, index.Value, term.Value);
        compactions++;
    }

    private void CompleteSync(Replica replica, LogIndex index, Term term, int generation)
    {
        replica.SyncsPending--;
        if (generation != replica.DiskGeneration)
        {
            return; // issued before a truncation or an install: it made durable only what no longer exists
        }

        // The disk syncs in order: everything written up to this write is durable now (if it is still there).
        var upTo = (int)Math.Min(index - replica.SnapshotIndex, replica.Written.Count);
        if (upTo > replica.Synced.Count)
        {
            replica.Synced.AddRange(replica.Written.GetRange(replica.Synced.Count, upTo - replica.Synced.Count));
        }

        replica.Node!.Persisted(index, term);
        Drain(replica);
        CrashAtFirstCommit(replica);
    }

    private void Send(Message message)
    {
        Record("send", Num(message.From), (long)message.Type, Num(message.To));
        var lossy = lossyFaults > 0;
        if (blocked.GetValueOrDefault((Num(message.From), Num(message.To))) > 0 || rng.Chance(lossy ? 0.2 : 0.01))
        {
            return;
        }

        var copies = rng.Chance(lossy ? 0.1 : 0.01) ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            Schedule(now + rng.Between(50, lossy ? 40_000 : 2_000), new SimEvent(EventKind.Deliver, Num(message.To), message));
        }
    }

    private void ScheduleWorkload()
    {
        // Enough proposals, spread over the fault phase.
        var count = settings.ProposalsMin + rng.Below(settings.ProposalsMin / 2);
        for (var i = 0; i < count; i++)
        {
            Schedule(rng.Between(200_000, settings.FaultPhaseUs), new SimEvent(EventKind.Propose, 0, Index: i + 1));
        }
    }

    private void Propose(long id)
    {
        // The client finds a leader (as a client library would, by asking around); none: retry shortly.
        var leaders = replicas.Where(r => r.Node?.Role == Role.Leader && !r.Node.TransferTarget.IsSome).ToList();
        var leader = leaders.Count == 0 ? null : leaders[rng.Below(leaders.Count)]; // a stale leader too, at times
        if (leader is null)
        {
            if (now < settings.FaultPhaseUs)
            {
                Schedule(now + 20_000, new SimEvent(EventKind.Propose, 0, Index: id));
            }

            return;
        }

        var data = ((ulong)seed << 32) | (ulong)id;
        var result = leader.Node!.Propose(BitConverter.GetBytes(data));
        if (result.Status != ProposeStatus.Ok)
        {
            Schedule(now + 20_000, new SimEvent(EventKind.Propose, 0, Index: id));
            return;
        }

        var proposal = new SimProposal(data, leader.Id, result.Index, result.Term);
        proposals.Add(proposal);
        proposalsByData[data] = proposal;
        // A stale leader may take a proposal at an index already decided, or behind a later term's committed entry.
        if (result.Index.Value < committed.Count)
        {
            var known = committed[(int)result.Index.Value];
            proposal.Committed = known.Term == result.Term && known.Data == data;
            proposal.Dropped = !proposal.Committed;
        }
        else if (committed[^1].Term > result.Term)
        {
            proposal.Dropped = true;
        }

        Record("propose", leader.Id, result.Index.Value, result.Term.Value);
        Drain(leader);
    }

    private void Record(string what, int replica, long a, long b)
    {
        // FNV-1a over the event stream: two runs of a seed must produce the same hash.
        foreach (var value in new[] { now, step, replica, a, b, what.Length, what[0] })
        {
            trace = (trace ^ (ulong)value) * 1099511628211UL;
        }

        settings.Trace?.WriteLine($"{now,12} #{step} {what} r{replica} {a} {b}");
    }

    private static int Num(ReplicaId id) => (int)id.Value;

    private void Fail(string message)
    {
        failure ??= message;
    }
}
