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
internal sealed class Simulation
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
    private readonly Dictionary<long, int> leaderOfTerm = [];
    private readonly Dictionary<(long Index, long Term), (ulong Data, long PrevTerm)> entriesSeen = [];
    private readonly List<(long Term, ulong Data)> committed = [(0, 0)]; // committed[i]: the entry committed at index i
    private readonly List<Proposal> proposals = [];
    private readonly Dictionary<ulong, Proposal> proposalsByData = [];
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

        public double ClockRate { get; } = clockRate;

        public long ClockOffset { get; } = clockOffset;

        public RaftNode? Node { get; set; }

        public int Incarnation { get; set; }

        public bool WasLeader { get; set; }

        public long LeaderTerm { get; set; }

        public long CommitAtElection { get; set; }

        // The disk: what the page cache holds, and what survives a crash.
        public HardState DurableHard { get; set; }

        // Entries after the snapshot: Written[i] and Synced[i] have index SnapshotIndex + 1 + i.
        public List<Entry> Written { get; } = [];

        public List<Entry> Synced { get; } = [];

        public long SnapshotIndex { get; set; }

        public long SnapshotTerm { get; set; }

        public ClusterConfig? SnapshotConfig { get; set; }

        public long SyncsPending { get; set; }

        public long LastSyncDoneAt { get; set; }

        // What this incarnation applied, in order (a restart re-applies from the start).
        public long Applied { get; set; }

        public long LocalNow(long trueUs) => (long)(trueUs * ClockRate) + ClockOffset;
    }

    private sealed class Proposal(ulong data, int replica, long index, long term)
    {
        public ulong Data { get; } = data;

        public int Replica { get; } = replica;

        public long Index { get; } = index;

        public long Term { get; } = term;

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
            Id = replica.Id,
            Voters = [.. replicas.Select(r => r.Id)],
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
                Record("deliver", e.Replica, (long)e.Message!.Type, e.Message.Term);
                replica.Node.Tick(replica.LocalNow(now));
                replica.Node.Step(e.Message);
                NoteLeadership(replica);
                Drain(replica);
                CrashAtFirstCommit(replica);
                break;
            case EventKind.SyncDone when replica!.Node is not null && e.Incarnation == replica.Incarnation:
                CompleteSync(replica, e.Index, e.Term);
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
                if (snapshot.Index >= committed.Count || committed[(int)snapshot.Index].Term != snapshot.Term)
                {
                    Fail($"SAFETY: replica {replica.Id} was sent a snapshot at {snapshot.Index} term {snapshot.Term} that is not committed state");
                    return;
                }

                Record("install", replica.Id, snapshot.Index, snapshot.Term);
                installs++;
                replica.Applied = snapshot.Index;
                replica.SnapshotIndex = snapshot.Index;
                replica.SnapshotTerm = snapshot.Term;
                replica.SnapshotConfig = snapshot.Config;
                replica.Written.Clear();
                replica.Synced.Clear();
            }

            // 2. Entries: a truncation is durable at once (FastSmr.Log's TruncateSuffix); the write syncs later.
            if (ready.Entries.Count > 0)
            {
                var first = (int)(ready.Entries[0].Index - replica.SnapshotIndex); // 1-based position after the snapshot
                if (first <= replica.Written.Count)
                {
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
                Schedule(done, new SimEvent(EventKind.SyncDone, replica.Id, Index: last.Index, Term: last.Term, Incarnation: replica.Incarnation));
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
        Record("compact", replica.Id, index, term);
        compactions++;
    }

    private void CompleteSync(Replica replica, long index, long term)
    {
        replica.SyncsPending--;
        // The disk syncs in order: everything written up to this write is durable now (if it is still there).
        var upTo = (int)Math.Min(index - replica.SnapshotIndex, replica.Written.Count);
        if (upTo > replica.Synced.Count)
        {
            replica.Synced.AddRange(replica.Written.GetRange(replica.Synced.Count, upTo - replica.Synced.Count));
        }

        replica.Node!.Tick(replica.LocalNow(now));
        replica.Node.Persisted(index, term);
        Drain(replica);
        CrashAtFirstCommit(replica);
    }

    private static void NoteLeadership(Replica replica)
    {
        var node = replica.Node!;
        if (node.Role == Role.Leader && replica.LeaderTerm != node.Term)
        {
            replica.LeaderTerm = node.Term;
            replica.CommitAtElection = node.CommitIndex;
        }
    }

    /// <summary>
    /// While a "crash at first commit" fault runs, a leader dies right after it first applied a commit of its term —
    /// the instant where committing an older term's entry by counting would be exposed (thesis figure 3.7): it acted
    /// on the commit, and its own entry may not have reached a majority yet.
    /// </summary>
    private void CrashAtFirstCommit(Replica replica)
    {
        var node = replica.Node;
        if (crashAtFirstCommitFaults == 0 || node is null || node.Role != Role.Leader || replica.LeaderTerm != node.Term || node.CommitIndex <= replica.CommitAtElection)
        {
            return;
        }

        Crash(replica);
        Schedule(now + rng.Between(50_000, 1_500_000), new SimEvent(EventKind.Restart, replica.Id));
    }

    private void Send(Message message)
    {
        Record("send", message.From, (long)message.Type, message.To);
        var lossy = lossyFaults > 0;
        if (blocked.GetValueOrDefault((message.From, message.To)) > 0 || rng.Chance(lossy ? 0.2 : 0.01))
        {
            return;
        }

        var copies = rng.Chance(lossy ? 0.1 : 0.01) ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            Schedule(now + rng.Between(50, lossy ? 40_000 : 2_000), new SimEvent(EventKind.Deliver, message.To, message));
        }
    }

    private void Apply(Replica replica, Entry entry)
    {
        if (entry.Index != replica.Applied + 1)
        {
            Fail($"replica {replica.Id} applied entry {entry.Index} after {replica.Applied}");
            return;
        }

        replica.Applied = entry.Index;
        var data = DataOf(entry);
        if (entry.Index < committed.Count)
        {
            var known = committed[(int)entry.Index];
            if (known.Term != entry.Term || known.Data != data)
            {
                Fail($"SAFETY: replica {replica.Id} applied entry {entry.Index} term {entry.Term} but term {known.Term} was committed there (a committed entry changed, or replicas apply different sequences)");
            }

            return;
        }

        committed.Add((entry.Term, data));
        configChanges += entry.Type == EntryType.Config ? 1 : 0;
        Record("commit", replica.Id, entry.Index, entry.Term);
        if (proposalsByData.TryGetValue(data, out var proposal) && entry.Type == EntryType.Normal)
        {
            if (proposal.Index != entry.Index || proposal.Term != entry.Term)
            {
                Fail($"SAFETY: proposal {data} was appended at {proposal.Index} term {proposal.Term} but committed at {entry.Index} term {entry.Term} (re-proposed?)");
                return;
            }

            proposal.Committed = true;
            if (replica.Id == proposal.Replica && replica.Node?.Role == Role.Leader)
            {
                proposal.Acknowledged = true; // the leader that took it now tells its client: committed
            }
        }

        // A higher-term entry committed at or before a pending proposal's index means it can never commit (Log Matching).
        foreach (var p in proposals)
        {
            if (!p.Committed && !p.Dropped && p.Index >= entry.Index && entry.Term > p.Term)
            {
                p.Dropped = true;
            }

            if (!p.Committed && !p.Dropped && p.Index == entry.Index && (entry.Term != p.Term || data != p.Data))
            {
                p.Dropped = true;
            }
        }
    }

    private static ulong DataOf(Entry entry) =>
        entry.Data.Length >= 8 ? BitConverter.ToUInt64(entry.Data.Span) : (ulong)entry.Type;

    private void NoteEntry(Replica replica, Entry entry)
    {
        // Log Matching, checked entry by entry: the same (index, term) anywhere has the same data and the same previous term.
        var position = (int)(entry.Index - 1 - replica.SnapshotIndex); // of the previous entry, 1-based after the snapshot
        var prevTerm = entry.Index == 1 ? 0
            : position == 0 ? replica.SnapshotTerm
            : position > 0 && position <= replica.Written.Count ? replica.Written[position - 1].Term
            : replica.Node?.TermAt(entry.Index - 1) ?? -1;
        var data = DataOf(entry);
        if (entriesSeen.TryGetValue((entry.Index, entry.Term), out var seen))
        {
            if (seen.Data != data || seen.PrevTerm != prevTerm)
            {
                Fail($"SAFETY: log matching broken at index {entry.Index} term {entry.Term} on replica {replica.Id}");
            }
        }
        else
        {
            entriesSeen[(entry.Index, entry.Term)] = (data, prevTerm);
        }
    }

    private void CheckInvariants()
    {
        foreach (var replica in replicas)
        {
            var node = replica.Node;
            if (node is null)
            {
                continue;
            }

            if (node.Role == Role.Leader)
            {
                if (leaderOfTerm.TryGetValue(node.Term, out var other) && other != replica.Id)
                {
                    Fail($"SAFETY: two leaders in term {node.Term}: {other} and {replica.Id}");
                    return;
                }

                if (!replica.WasLeader)
                {
                    leaderOfTerm[node.Term] = replica.Id;
                    elections++;
                    Record("leader", replica.Id, node.Term, 0);
                    if (crashNewLeaderFaults > 0)
                    {
                        // A leader that dies within milliseconds of winning: its first appends reach some replicas only.
                        // Half the time within a millisecond: before its first appends arrive anywhere.
                        Schedule(now + rng.Between(0, rng.Chance(0.5) ? 1_000 : 20_000), new SimEvent(EventKind.Crash, replica.Id, Incarnation: replica.Incarnation));
                    }

                    // Leader Completeness: every committed entry is in the new leader's log.
                    for (var i = (int)Math.Max(1, node.SnapshotIndex); i < committed.Count; i++)
                    {
                        if (node.TermAt(i) != committed[i].Term)
                        {
                            Fail($"SAFETY: leader {replica.Id} of term {node.Term} lacks committed entry {i} (term {committed[i].Term}; it has {node.TermAt(i)})");
                            return;
                        }
                    }
                }
            }

            replica.WasLeader = node.Role == Role.Leader;
        }

        // The lease: while a leader's lease holds on its own clock, nobody leads a later term.
        foreach (var holder in replicas)
        {
            var node = holder.Node;
            if (node?.Role != Role.Leader || node.LeaseUntil <= holder.LocalNow(now))
            {
                continue;
            }

            foreach (var other in replicas)
            {
                if (other.Node?.Role == Role.Leader && other.Node.Term > node.Term)
                {
                    Fail($"SAFETY: replica {holder.Id} holds a lease of term {node.Term} (until {node.LeaseUntil}, its clock reads {holder.LocalNow(now)}, transfer target {node.TransferTarget}) while replica {other.Id} leads term {other.Node.Term}");
                    return;
                }
            }
        }
    }

    private void CheckLiveness()
    {
        var leaders = replicas.Where(r => r.Node?.Role == Role.Leader).ToList();
        if (leaders.Count == 0)
        {
            Fail($"LIVENESS: no leader {settings.LivenessBoundUs / 1000} ms after the faults stopped");
            return;
        }

        // An acknowledged proposal is never lost: what its leader told the client is what stayed committed.
        foreach (var p in proposals.Where(p => p.Acknowledged))
        {
            if (p.Index >= committed.Count || committed[(int)p.Index] != (p.Term, p.Data))
            {
                Fail($"SAFETY: proposal at {p.Index} term {p.Term} was acknowledged but is not what is committed there");
                return;
            }
        }

        var pending = proposals.Where(p => !p.Committed && !p.Dropped).ToList();
        if (pending.Count > 0)
        {
            Fail($"LIVENESS: {pending.Count} proposals neither committed nor dropped {settings.LivenessBoundUs / 1000} ms after the faults stopped (first: index {pending[0].Index} term {pending[0].Term})");
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
        var leaders = replicas.Where(r => r.Node?.Role == Role.Leader && r.Node.TransferTarget == 0).ToList();
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

        var proposal = new Proposal(data, leader.Id, result.Index, result.Term);
        proposals.Add(proposal);
        proposalsByData[data] = proposal;
        // A stale leader may take a proposal at an index already decided, or behind a later term's committed entry.
        if (result.Index < committed.Count)
        {
            var known = committed[(int)result.Index];
            proposal.Committed = known.Term == result.Term && known.Data == data;
            proposal.Dropped = !proposal.Committed;
        }
        else if (committed[^1].Term > result.Term)
        {
            proposal.Dropped = true;
        }

        Record("propose", leader.Id, result.Index, result.Term);
        Drain(leader);
    }

    private void ScheduleFaults()
    {
        // Three independent streams of faults, so that faults overlap (an isolated leader while new leaders die, …).
        var id = 0;
        for (var stream = 0; stream < 3; stream++)
        {
            var at = rng.Between(500_000, 3_000_000);
            while (at < settings.FaultPhaseUs - 1_000_000)
            {
                id++;
                // Isolating the leader and killing leaders at their worst moments (kinds 3, 8, 10) come twice as often:
                // together they make the paper's figure-8 histories, which nothing else reaches in few seeds.
                var kind = rng.Below(16) switch { 12 => 3, 13 => 8, 14 => 10, var k => k };
                var length = rng.Between(300_000, 3_000_000);
                if (kind == 15)
                {
                    // The figure-8 script (thesis figure 3.7), built from the faults above: the leader is cut off
                    // (clients still reach it, so it grows an uncommitted tail) while whoever wins next dies at once;
                    // then it returns, wins again, and dies the moment it first commits.
                    var back = at + rng.Between(400_000, 900_000);
                    Schedule(at, new SimEvent(EventKind.FaultStart, 0, Index: ++id, Fault: 3));
                    Schedule(back, new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: 3));
                    Schedule(at + 1, new SimEvent(EventKind.FaultStart, 0, Index: ++id, Fault: 8));
                    Schedule(back, new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: 8));
                    Schedule(back + 1, new SimEvent(EventKind.FaultStart, 0, Index: ++id, Fault: 10));
                    length = back - at + rng.Between(500_000, 2_000_000);
                    Schedule(Math.Min(at + length, settings.FaultPhaseUs), new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: 10));
                    at += length + rng.Between(200_000, 3_000_000);
                    continue;
                }

                Schedule(at, new SimEvent(EventKind.FaultStart, 0, Index: id, Fault: kind));
                Schedule(Math.Min(at + length, settings.FaultPhaseUs), new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: kind));
                at += length + rng.Between(200_000, 3_000_000);
            }
        }

        Schedule(settings.FaultPhaseUs, new SimEvent(EventKind.FaultEnd, 0, Fault: -1));
    }

    private void Cut(int fault, int from, int to)
    {
        if (!cutsByFault.TryGetValue(fault, out var cuts))
        {
            cutsByFault[fault] = cuts = [];
        }

        cuts.Add((from, to));
        blocked[(from, to)] = blocked.GetValueOrDefault((from, to)) + 1;
    }

    private void StartFault(int kind, long faultId)
    {
        var fault = (int)faultId;
        faults++;
        var leader = replicas.FirstOrDefault(r => r.Node?.Role == Role.Leader);
        var victim = replicas[rng.Below(replicas.Length)];
        Record("fault", kind, leader?.Id ?? 0, victim.Id);
        switch (kind)
        {
            case 0: // crash a replica (the leader half the time), restart it at the end of the fault
            case 1:
                var target = kind == 0 && leader is not null ? leader : victim;
                if (target.Node is not null && replicas.Count(r => r.Node is null) < (replicas.Length - 1) / 2 + 1)
                {
                    Crash(target);
                    Schedule(now + rng.Between(100_000, 2_000_000), new SimEvent(EventKind.Restart, target.Id));
                }

                break;
            case 2: // symmetric partition: a random minority cut off
                var minority = replicas.OrderBy(_ => rng.Next()).Take(rng.Below(replicas.Length / 2) + 1).Select(r => r.Id).ToHashSet();
                foreach (var a in replicas)
                {
                    foreach (var b in replicas)
                    {
                        if (minority.Contains(a.Id) != minority.Contains(b.Id))
                        {
                            Cut(fault, a.Id, b.Id);
                        }
                    }
                }

                break;
            case 3: // isolate the leader
                var isolated = leader ?? victim;
                foreach (var other in replicas)
                {
                    if (other != isolated)
                    {
                        Cut(fault, isolated.Id, other.Id);
                        Cut(fault, other.Id, isolated.Id);
                    }
                }

                break;
            case 4: // one-way: one replica's messages to another are lost, not the other way
                var from = leader is not null && rng.Chance(0.5) ? leader : victim;
                var to = replicas[rng.Below(replicas.Length)];
                if (from != to)
                {
                    Cut(fault, from.Id, to.Id);
                }

                break;
            case 5: // lossy, duplicating, slow network
                lossyFaults++;
                break;
            case 6: // slow disks
                slowDiskFaults++;
                break;
            case 7: // power loss: every replica crashes at once (unsynced writes lost everywhere), all restart later
                foreach (var replica in replicas.Where(r => r.Node is not null))
                {
                    Crash(replica);
                    Schedule(now + rng.Between(50_000, 1_000_000), new SimEvent(EventKind.Restart, replica.Id));
                }

                break;
            case 8: // every new leader crashes within 20 ms of winning, for the length of the fault
                crashNewLeaderFaults++;
                break;
            case 10: // leaders die the moment their commit index first moves in their term
                crashAtFirstCommitFaults++;
                break;
            case 11: // a membership change: promote a learner, add a replica outside the configuration, or remove one
                if (leader?.Node is not null)
                {
                    ChangeMembership(leader);
                }

                break;
            default: // leadership transfer to a random replica (possibly lagging)
                if (leader?.Node is not null)
                {
                    var transferTo = replicas[rng.Below(replicas.Length)];
                    if (leader.Node.TransferLeadership(transferTo.Id))
                    {
                        Drain(leader);
                    }
                }

                break;
        }
    }

    private void ChangeMembership(Replica leader)
    {
        var node = leader.Node!;
        var config = node.Config;
        var learner = replicas.FirstOrDefault(r => config.Learners.Contains(r.Id));
        var outsider = replicas.FirstOrDefault(r => !config.IsMember(r.Id));
        var (change, id) = learner is not null ? (ConfigChange.PromoteLearner, learner.Id)
            : outsider is not null ? (ConfigChange.AddLearner, outsider.Id)
            : config.Voters.Count > 2 ? (ConfigChange.Remove, config.Voters[rng.Below(config.Voters.Count)]) // the leader itself, at times
            : (ConfigChange.AddLearner, 0);
        if (id == 0)
        {
            return;
        }

        var result = node.ProposeConfigChange(change, id);
        Record("config", leader.Id, (long)change * 100 + id, result.Index);
        Drain(leader);
    }

    private void EndFault(int kind, long faultId)
    {
        if (kind < 0)
        {
            // The end of the fault phase: everything heals, every crashed replica restarts.
            blocked.Clear();
            cutsByFault.Clear();
            lossyFaults = slowDiskFaults = crashNewLeaderFaults = crashAtFirstCommitFaults = 0;
            foreach (var replica in replicas.Where(r => r.Node is null))
            {
                Schedule(now + 1, new SimEvent(EventKind.Restart, replica.Id));
            }

            return;
        }

        if (cutsByFault.Remove((int)faultId, out var cuts))
        {
            foreach (var link in cuts)
            {
                if (blocked.TryGetValue(link, out var count))
                {
                    if (count <= 1)
                    {
                        blocked.Remove(link);
                    }
                    else
                    {
                        blocked[link] = count - 1;
                    }
                }
            }
        }

        switch (kind)
        {
            case 5:
                lossyFaults = Math.Max(0, lossyFaults - 1);
                break;
            case 6:
                slowDiskFaults = Math.Max(0, slowDiskFaults - 1);
                break;
            case 8:
                crashNewLeaderFaults = Math.Max(0, crashNewLeaderFaults - 1);
                break;
            case 10:
                crashAtFirstCommitFaults = Math.Max(0, crashAtFirstCommitFaults - 1);
                break;
        }
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

    private void Fail(string message)
    {
        failure ??= message;
    }
}
