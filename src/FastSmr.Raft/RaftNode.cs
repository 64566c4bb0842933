namespace FastSmr.Raft;

/// <summary>
/// One replica's Raft core. Pure: no I/O, no clock, no threads — time comes in through <see cref="Tick"/>, randomness
/// from the seed in <see cref="RaftOptions"/>, and everything the host must do comes out as a <see cref="Ready"/>.
/// Not thread-safe: one thread (or one simulated replica) drives it.
/// </summary>
public sealed partial class RaftNode
{
    private readonly RaftOptions options;
    private readonly RaftLog log;
    private readonly Dictionary<ReplicaId, Progress> progress = [];
    private readonly List<Message> outbox = [];
    private readonly List<Entry> readyEntries = [];
    private readonly List<Message> readyMessages = [];
    private readonly List<Entry> readyCommitted = [];
    private readonly Ready ready;
    private readonly List<(LogIndex Index, ClusterConfig Config)> configs = []; // [0]: the configuration at the snapshot
    private ClusterConfig config;
    private SnapshotInfo? snapshotToInstall;
    private ulong random;
    private HardState lastHardState;
    private long now;
    private bool started;
    private bool readyOutstanding;
    private long electionDeadline;
    private long heartbeatDeadline;
    private long checkQuorumDeadline;
    private long noVoteUntil;
    private readonly HashSet<ReplicaId> votesFor = [];
    private readonly HashSet<ReplicaId> votesAgainst = [];

    /// <summary>
    /// Starts a replica from what it persisted: nothing for a new one; else its hard state, its log after the snapshot,
    /// and the snapshot's index, term and configuration (the bootstrap configuration of the options when there is none).
    /// </summary>
    public RaftNode(
        RaftOptions options,
        HardState hardState = default,
        IReadOnlyList<Entry>? persisted = null,
        LogIndex snapshotIndex = default,
        Term snapshotTerm = default,
        ClusterConfig? snapshotConfig = null
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        ready = new Ready(readyEntries, readyMessages, readyCommitted);
        configs.Add((snapshotIndex, snapshotConfig ?? new ClusterConfig(options.Voters, options.Learners)));
        config = configs[0].Config;
        random = options.Seed == 0 ? 0x9E3779B97F4A7C15UL : options.Seed;
        log = new RaftLog(snapshotIndex, snapshotTerm, persisted ?? [], hardState.Commit);
        Term = hardState.Term;
        Vote = hardState.Vote;
        lastHardState = new HardState(Term, Vote, log.Committed);
        Role = Role.Follower;
        RefreshConfig(fromIndex: log.FirstIndex);
    }

    /// <summary>The configuration in effect: the latest one in the log, committed or not (thesis §4.1).</summary>
    public ClusterConfig Config => config;

    /// <summary>The last index covered by the snapshot (entries up to it are compacted away).</summary>
    public LogIndex SnapshotIndex => log.SnapshotIndex;

    /// <summary>The configuration at <see cref="SnapshotIndex"/>: store it with the snapshot.</summary>
    public ClusterConfig SnapshotConfig => configs[0].Config;

    /// <summary>This replica's id.</summary>
    public ReplicaId Id => options.Id;

    /// <summary>The index of the snapshot the next <see cref="Ready"/> tells the host to install, if any.</summary>
    public LogIndex? PendingSnapshotIndex => snapshotToInstall?.Index;

    /// <summary>The current term.</summary>
    public Term Term { get; private set; }

    /// <summary>Whom this replica voted for in <see cref="Term"/> (0: nobody).</summary>
    public ReplicaId Vote { get; private set; }

    /// <summary>The current role.</summary>
    public Role Role { get; private set; }

    /// <summary>The leader of <see cref="Term"/> as far as this replica knows (0: unknown).</summary>
    public ReplicaId Leader { get; private set; }

    /// <summary>The commit index.</summary>
    public LogIndex CommitIndex => log.Committed;

    /// <summary>The last index in the log.</summary>
    public LogIndex LastIndex => log.LastIndex;

    /// <summary>The highest index this replica has persisted.</summary>
    public LogIndex StableIndex => log.Stable;

    /// <summary>The leadership transfer in progress (0: none).</summary>
    public ReplicaId TransferTarget { get; private set; }

    /// <summary>The term of entry <paramref name="index"/> in this replica's log (-1: not there).</summary>
    public Term TermAt(LogIndex index) => log.Term(index);

    /// <summary>Whether a <see cref="Ready"/> has work in it.</summary>
    public bool HasReady =>
        outbox.Count > 0
        || snapshotToInstall is not null
        || log.LastIndex > log.Written
        || LogIndex.Min(log.Committed, log.Stable) > log.Applied
        || Term != lastHardState.Term
        || Vote != lastHardState.Vote
        || DurableCommit != lastHardState.Commit;

    // The commit index the host may persist: never beyond this replica's durable log, or a crash could leave a commit
    // index pointing past a truncation that was never written, over entries of an old term.
    private LogIndex DurableCommit => LogIndex.Min(log.Committed, log.Stable);

    /// <summary>
    /// The work the host must do now (see <see cref="Ready"/> for the order). Call <see cref="Advance"/> after it. The
    /// same <see cref="Ready"/> object and lists come back on the next call: copy what must outlive <see cref="Advance"/>.
    /// </summary>
    public Ready GetReady()
    {
        ThrowIfReadyOutstanding();
        readyOutstanding = true;
        var hard = new HardState(Term, Vote, DurableCommit);

        // One Ready and its lists are reused from call to call (the contract: valid until Advance), so a steady stream
        // of proposals does not allocate a Ready and three lists per round.
        log.Unwritten(readyEntries);
        log.Unapplied(readyCommitted);
        readyMessages.Clear();
        readyMessages.AddRange(outbox);
        ready.HardState = hard;
        ready.HardStateChanged = hard.Term != lastHardState.Term || hard.Vote != lastHardState.Vote;
        ready.Snapshot = snapshotToInstall;
        return ready;
    }

    /// <summary>The host handled <paramref name="ready"/>: entries handed to storage, messages sent, committed entries applied.</summary>
    public void Advance(Ready ready)
    {
        ArgumentNullException.ThrowIfNull(ready);
        readyOutstanding = false;
        lastHardState = ready.HardState;
        if (ready.Snapshot is not null)
        {
            snapshotToInstall = null;
        }

        if (ready.Entries.Count > 0)
        {
            log.MarkWritten(ready.Entries[^1].Index);
        }

        if (ready.CommittedEntries.Count > 0)
        {
            log.MarkApplied(ready.CommittedEntries[^1].Index);
        }

        outbox.RemoveRange(0, Math.Min(ready.Messages.Count, outbox.Count));
    }

    /// <summary>
    /// The host's storage made entries up to (<paramref name="index"/>, <paramref name="term"/>) durable. Ignored if the
    /// log changed since (a truncation). Only now may this replica acknowledge them, and a leader count itself.
    /// </summary>
    public void Persisted(LogIndex index, Term term)
    {
        if (!log.MarkStable(index, term))
        {
            return;
        }

        if (Role == Role.Leader)
        {
            MaybeCommit();
        }
        else
        {
            AcknowledgeStable();
        }
    }

    /// <summary>Time passes: elections, heartbeats, check-quorum and the transfer timeout happen here.</summary>
    public void Tick(long nowUs)
    {
        ThrowIfReadyOutstanding();
        AdvanceClock(nowUs);
        if (Role == Role.Leader)
        {
            TickLeader();
        }
        else if (now >= electionDeadline)
        {
            if (config.IsVoter(Id))
            {
                StartElection(transfer: false);
            }
            else
            {
                ResetElectionDeadline(now); // a learner (or a removed replica) never campaigns
            }
        }
    }

    /// <summary>
    /// The host took a snapshot of the state machine at <paramref name="index"/> (applied and durable here): entries up
    /// to it leave the log. A follower that later needs them gets the snapshot instead.
    /// </summary>
    public void Compact(LogIndex index)
    {
        ThrowIfReadyOutstanding();
        if (index <= log.SnapshotIndex)
        {
            return; // already covered (a leader's snapshot was installed meanwhile)
        }

        log.CompactTo(index);
        var baseIndex = configs.FindLastIndex(c => c.Index <= index);
        var atSnapshot = configs[baseIndex].Config;
        configs.RemoveRange(0, baseIndex + 1);
        configs.Insert(0, (index, atSnapshot));
    }

    // Why single-server changes rather than joint consensus (thesis §4.1 against §4.3): any two configurations that
    // differ by one voter have overlapping majorities, so a change needs one log entry and no intermediate
    // configuration, and the rule "a configuration is in effect once it is in the log" stays simple. What it costs —
    // replacing several voters takes several changes — is what an operator does anyway (add a learner, let it catch
    // up, promote it, remove the old one). Its one known hazard, a change by a new leader overlapping an uncommitted
    // change of an old one, is closed by the 2015 erratum below.

    /// <summary>
    /// Proposes a batch. Appended (not committed) on success; the caller learns the outcome from the committed entry at
    /// that index.
    /// </summary>
    public Proposal Propose(ReadOnlyMemory<byte> data)
    {
        ThrowIfReadyOutstanding();
        if (Role != Role.Leader)
        {
            return new Proposal(ProposeStatus.NotLeader, default, default, Leader);
        }

        if (TransferTarget.IsSome || log.LastIndex - log.Committed >= options.UncommittedEntriesMax)
        {
            return new Proposal(ProposeStatus.Busy, default, default, Id);
        }

        var entry = new Entry(log.LastIndex + 1, Term, EntryKind.Normal, data);
        log.Append(entry);
        _ = log.TakeChanges(); // not a configuration entry: nothing to rescan
        SendAppends();
        return new Proposal(ProposeStatus.Ok, entry.Index, entry.Term, Id);
    }

    /// <summary>
    /// Handles a message from another replica, received at <paramref name="nowUs"/> on this replica's clock (the lease
    /// promise runs from the moment of receipt, so the time must be the receipt time, not the last tick's).
    /// </summary>
    public void Step(Message message, long nowUs)
    {
        ArgumentNullException.ThrowIfNull(message);
        ThrowIfReadyOutstanding();
        AdvanceClock(nowUs);
        if (message.To != Id || message.From == Id || !message.From.IsSome)
        {
            return; // not for us: ignore
        }

        if (Malformed(message) is { } reason)
        {
            Drop(reason);
            return;
        }

        if (!TermInReach(message))
        {
            Drop("a term too far past 2^62 and this replica's");
            return;
        }

        StepMessage(message);
        RefreshConfig();
    }

    private void StepMessage(Message message)
    {
        if (message.Term > Term && !OnHigherTerm(message))
        {
            return;
        }

        if (message.Term < Term)
        {
            OnLowerTerm(message);
            return;
        }

        switch (message.Type)
        {
            case MessageType.PreVote:
                HandlePreVote(message);
                return;
            case MessageType.Vote:
                HandleVote(message);
                return;
        }

        switch (Role)
        {
            case Role.Leader:
                StepLeader(message);
                break;
            case Role.Candidate:
            case Role.PreCandidate:
                StepCandidate(message);
                break;
            default:
                StepFollower(message);
                break;
        }
    }

    /// <summary>A message of a later term: moves this replica to that term unless it is a vote request inside the vote
    /// promise, or a pre-vote; false when the message is done with.</summary>
    private bool OnHigherTerm(Message message)
    {
        if (message.Type is MessageType.PreVote or MessageType.Vote && !message.Transfer && InVotePromise())
        {
            // Within a minimum election timeout of hearing from a leader, a vote request neither moves the term nor
            // gets a vote (thesis §4.2.3): that is what makes the leader's lease safe (§6.4).
            if (message.Type == MessageType.PreVote)
            {
                RejectPreVote(message);
            }

            return false;
        }

        // A pre-vote (or a grant of one) is about a term nobody has entered yet: no term change.
        if (message.Type != MessageType.PreVote && (message.Type != MessageType.PreVoteResponse || message.Reject))
        {
            var leader = message.Type is MessageType.Append or MessageType.Heartbeat or MessageType.Snapshot
                ? message.From
                : ReplicaId.None;
            BecomeFollower(message.Term, leader);
        }

        return true;
    }

    /// <summary>A message of an earlier term: a stale leader is told the term, a pre-vote refused, the rest ignored.</summary>
    private void OnLowerTerm(Message message)
    {
        if (message.Type is MessageType.Append or MessageType.Heartbeat or MessageType.Snapshot)
        {
            // A stale leader: tell it the term so it steps down (with check-quorum or pre-vote it would not learn otherwise).
            Send(
                new Message
                {
                    Type = MessageType.AppendResponse,
                    From = Id,
                    To = message.From,
                    Term = Term,
                    Reject = true,
                    Index = message.Index,
                    RejectHint = log.LastIndex,
                }
            );
        }
        else if (message.Type == MessageType.PreVote)
        {
            RejectPreVote(message);
        }
    }

    private void RejectPreVote(Message message) =>
        Send(
            new Message
            {
                Type = MessageType.PreVoteResponse,
                From = Id,
                To = message.From,
                Term = Term,
                Reject = true,
            }
        );

    private void Send(Message message)
    {
        if (message.From != Id)
        {
            throw new InvalidOperationException("a message must name its sender");
        }

        outbox.Add(message);
    }

    private void AdvanceClock(long nowUs)
    {
        if (!started)
        {
            started = true;
            // A restarted replica may have promised, in an earlier life, not to vote for a while: keep that promise.
            noVoteUntil = nowUs + options.ElectionTimeoutMinUs;
            ResetElectionDeadline(nowUs);
        }

        now = Math.Max(now, nowUs);
    }

    /// <summary>Between <see cref="GetReady"/> and <see cref="Advance"/> only <see cref="Persisted"/> may be called.</summary>
    private void ThrowIfReadyOutstanding()
    {
        if (readyOutstanding)
        {
            throw new InvalidOperationException("a Ready is outstanding: call Advance before stepping, ticking or proposing");
        }
    }

    private void BecomeFollower(Term term, ReplicaId leader)
    {
        if (term > Term)
        {
            Term = term;
            Vote = ReplicaId.None;
        }

        Role = Role.Follower;
        Leader = leader;
        leaderMatch = acknowledged = LogIndex.Zero; // what matched an earlier leader's log says nothing about this one's
        TransferTarget = ReplicaId.None;
        progress.Clear();
        ResetElectionDeadline(now);
    }

    private void ResetElectionDeadline(long from)
    {
        // [min, 2 × min): randomized so that split votes resolve (thesis §3.4).
        electionDeadline = from + options.ElectionTimeoutMinUs + (long)(NextRandom() % (ulong)options.ElectionTimeoutMinUs);
    }

    private ulong NextRandom()
    {
        // SplitMix64: deterministic for a given seed, no shared state.
        var z = random += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
