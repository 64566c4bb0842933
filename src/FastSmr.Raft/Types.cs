namespace FastSmr.Raft;

/// <summary>What an entry carries.</summary>
public enum EntryKind : byte
{
    /// <summary>A batch proposed by the state machine's host: opaque bytes.</summary>
    Normal = 1,

    /// <summary>The empty entry a new leader appends so that an entry of its own term can commit (thesis §3.6.2, §6.4).</summary>
    NoOp = 2,

    /// <summary>A membership change: the new <see cref="ClusterConfig"/>, in effect from the moment it is in a log.</summary>
    Config = 3,
}

/// <summary>A snapshot's place in the log and the configuration in effect at that point.</summary>
public readonly record struct SnapshotInfo(LogIndex Index, Term Term, ClusterConfig Config);

/// <summary>One log entry. <see cref="Data"/> is the batch exactly as proposed; the core never looks inside.</summary>
public readonly record struct Entry(LogIndex Index, Term Term, EntryKind Type, ReadOnlyMemory<byte> Data);

/// <summary>What must be durable before any message that depends on it is sent: term, vote, commit index.</summary>
public readonly record struct HardState(Term Term, ReplicaId Vote, LogIndex Commit);

/// <summary>A replica's role.</summary>
public enum Role
{
    /// <summary>Follows a leader (or waits for one).</summary>
    Follower,

    /// <summary>Asks, without changing its term, whether it could win an election (thesis §9.6).</summary>
    PreCandidate,

    /// <summary>Campaigns in a new term.</summary>
    Candidate,

    /// <summary>Leads its term.</summary>
    Leader,
}

/// <summary>The kinds of message the core sends and receives.</summary>
public enum MessageType : byte
{
    /// <summary>Would you vote for me in term <see cref="Message.Term"/>? (Does not change anyone's term.)</summary>
    PreVote = 1,

    /// <summary>The answer to a pre-vote.</summary>
    PreVoteResponse,

    /// <summary>RequestVote.</summary>
    Vote,

    /// <summary>The answer to a vote request.</summary>
    VoteResponse,

    /// <summary>AppendEntries: entries after (<see cref="Message.Index"/>, <see cref="Message.LogTerm"/>), and the commit index.</summary>
    Append,

    /// <summary>
    /// The answer to AppendEntries: the highest index the follower has persisted that matches the leader's log, or a
    /// rejection.
    /// </summary>
    AppendResponse,

    /// <summary>The leader's heartbeat: commit index and a round number (the lease's clock).</summary>
    Heartbeat,

    /// <summary>The answer to a heartbeat, echoing its round.</summary>
    HeartbeatResponse,

    /// <summary>Leadership transfer: start an election now, skipping pre-vote (thesis §3.10).</summary>
    TimeoutNow,

    /// <summary>
    /// InstallSnapshot, as metadata: the follower is behind the leader's first index. <see cref="Message.Index"/> and
    /// <see cref="Message.LogTerm"/> are the snapshot's last index and term, <see cref="Message.Config"/> its
    /// configuration; the state itself travels outside the core (the host streams it).
    /// </summary>
    Snapshot,
}

/// <summary>
/// A message between replicas. Fields mean different things per type, as in the Raft paper's RPCs: for
/// <see cref="MessageType.Append"/>, <see cref="Index"/> and <see cref="LogTerm"/> are prevLogIndex and prevLogTerm; for
/// votes they are the candidate's last log index and term; for <see cref="MessageType.AppendResponse"/>, <see cref="Index"/>
/// is the acknowledged (persisted, matching) index or the rejected prevLogIndex.
/// </summary>
public sealed class Message
{
    /// <summary>The message type.</summary>
    public MessageType Type { get; init; }

    /// <summary>Sender's replica id.</summary>
    public ReplicaId From { get; init; }

    /// <summary>Recipient's replica id.</summary>
    public ReplicaId To { get; init; }

    /// <summary>The sender's term (for a granted pre-vote, the term it was granted for).</summary>
    public Term Term { get; init; }

    /// <summary>prevLogTerm (Append) or last log term (votes).</summary>
    public Term LogTerm { get; init; }

    /// <summary>prevLogIndex (Append), last log index (votes), acknowledged or rejected index (AppendResponse).</summary>
    public LogIndex Index { get; init; }

    /// <summary>Entries to append (Append only).</summary>
    public IReadOnlyList<Entry> Entries { get; init; } = [];

    /// <summary>The leader's commit index (Append, Heartbeat).</summary>
    public LogIndex Commit { get; init; }

    /// <summary>A refusal (votes, AppendResponse).</summary>
    public bool Reject { get; init; }

    /// <summary>For a rejected Append: the index the leader should try as prevLogIndex next.</summary>
    public LogIndex RejectHint { get; init; }

    /// <summary>Heartbeat round (Heartbeat, HeartbeatResponse); 0 for a commit notification that is not a lease round.</summary>
    public long Round { get; init; }

    /// <summary>A vote request that comes from a leadership transfer: the old leader gave up its lease, so promises do not apply.</summary>
    public bool Transfer { get; init; }

    /// <summary>The snapshot's configuration (Snapshot only).</summary>
    public ClusterConfig? Config { get; init; }

    /// <summary>
    /// Append: a hash of the leader's entry at <see cref="Index"/> (the previous entry; <see cref="RaftLog.HashOf"/>), 0
    /// when the leader no longer holds its bytes. A follower whose entry there has the same term but another hash
    /// rejects, so that the leader resends that entry and it is replaced (decision 89).
    /// </summary>
    public ulong PrevHash { get; init; }

    /// <summary>
    /// AppendResponse rejection: the entry at <see cref="Index"/> has the leader's term but not the leader's bytes, so
    /// the follower does not match there even if it said so before (decision 89).
    /// </summary>
    public bool Differs { get; init; }

    /// <inheritdoc />
    public override string ToString() =>
        $"{Type} {From}->{To} t{Term} i{Index} lt{LogTerm} c{Commit} "
        + $"n{Entries.Count}{(Reject ? " reject h" + RejectHint : "")}{(Round != 0 ? " r" + Round : "")}{(Transfer ? " transfer" : "")}";
}

/// <summary>The answer to a proposal.</summary>
public enum ProposeStatus
{
    /// <summary>Appended to the leader's log at the returned index and term; not yet committed.</summary>
    Ok,

    /// <summary>Not appended: this replica is not the leader (see the hint).</summary>
    NotLeader,

    /// <summary>Not appended: a leadership transfer is in progress or a bound was reached.</summary>
    Busy,
}

/// <summary>Where a proposal went: committed only if the entry committed at <see cref="Index"/> has <see cref="Term"/>.</summary>
public readonly record struct Proposal(ProposeStatus Status, LogIndex Index, Term Term, ReplicaId LeaderHint);
