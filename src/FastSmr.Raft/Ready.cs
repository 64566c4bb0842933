namespace FastSmr.Raft;

/// <summary>
/// What the host must do, in this order, before calling <see cref="RaftNode.Advance"/>:
/// <list type="number">
/// <item><see cref="Snapshot"/> (when set): install the state of that snapshot (fetched from the leader) and persist
/// it, with the log truncated to start after it, before anything else — the messages below acknowledge it.</item>
/// <item><see cref="HardState"/> (when <see cref="HardStateChanged"/>): persist it <b>before</b> sending any of
/// <see cref="Messages"/> — a vote or a new term must not be forgotten after others acted on it.</item>
/// <item><see cref="Entries"/>: start persisting them (if the first one's index is at or below entries written earlier,
/// truncate the log from there first). The host may send <see cref="Messages"/> before this write is durable — a
/// leader's own write runs in parallel with replication (thesis §10.2.1) — and reports durability later with
/// <see cref="RaftNode.Persisted"/>; no message that acknowledges an entry is ever produced before that report.</item>
/// <item><see cref="Messages"/>: send them (any order, any time after step 1; losing some is harmless).</item>
/// <item><see cref="CommittedEntries"/>: apply them in order (they are committed and durable on this replica).</item>
/// </list>
/// </summary>
/// <remarks>A node reuses one Ready and its lists: they are valid until <see cref="RaftNode.Advance"/>.</remarks>
public sealed class Ready
{
    internal Ready(List<Entry> entries, List<Message> messages, List<Entry> committed)
    {
        Entries = entries;
        Messages = messages;
        CommittedEntries = committed;
    }

    /// <summary>Term, vote and commit index now.</summary>
    public HardState HardState { get; internal set; }

    /// <summary>Whether term or vote changed since the last Ready (the commit index alone need not be persisted first).</summary>
    public bool HardStateChanged { get; internal set; }

    /// <summary>Entries to persist, in index order.</summary>
    public IReadOnlyList<Entry> Entries { get; }

    /// <summary>Messages to send once <see cref="HardState"/> is persisted.</summary>
    public IReadOnlyList<Message> Messages { get; }

    /// <summary>Entries to apply, in order.</summary>
    public IReadOnlyList<Entry> CommittedEntries { get; }

    /// <summary>A snapshot to install (a follower that was behind the leader's first index).</summary>
    public SnapshotInfo? Snapshot { get; internal set; }
}
