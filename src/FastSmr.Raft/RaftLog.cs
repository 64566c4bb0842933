namespace FastSmr.Raft;

/// <summary>
/// The core's view of the log: every entry after the compaction point, in memory, with three marks — written (handed
/// to the host to persist), stable (the host reported it durable) and committed — plus the applied mark (handed to
/// the host to apply). Invariants, checked on every change: applied ≤ committed ≤ last; stable ≤ written ≤ last.
/// </summary>
internal sealed class RaftLog
{
    /// <summary>What <see cref="Term"/> answers for an entry this log does not hold.</summary>
    public static readonly Term Unknown = new(-1);

    /// <summary>What <see cref="TakeChanges"/> answers when nothing changed.</summary>
    public static readonly LogIndex NoChange = new(long.MaxValue);

    private readonly List<Entry> entries = [];

    public RaftLog(LogIndex snapshotIndex, Term snapshotTerm, IReadOnlyList<Entry> persisted, LogIndex commit)
    {
        SnapshotIndex = snapshotIndex;
        SnapshotTerm = snapshotTerm;
        var expected = snapshotIndex + 1;
        var term = snapshotTerm;
        foreach (var entry in persisted)
        {
            if (entry.Index != expected || entry.Term < term)
            {
                throw new ArgumentException(
                    "persisted entries must follow the snapshot with consecutive indexes and terms that never go down; entry "
                        + entry.Index
                        + " breaks that",
                    nameof(persisted)
                );
            }

            entries.Add(entry);
            expected++;
            term = entry.Term;
        }

        Written = Stable = LastIndex;
        Committed = LogIndex.Min(LogIndex.Max(commit, snapshotIndex), LastIndex);
        Applied = snapshotIndex;
    }

    /// <summary>
    /// The lowest index added, removed or replaced since the last <see cref="TakeChanges"/> (configs are rescanned from
    /// there).
    /// </summary>
    private LogIndex changedFrom = NoChange;

    public LogIndex SnapshotIndex { get; private set; }

    public Term SnapshotTerm { get; private set; }

    public LogIndex FirstIndex => SnapshotIndex + 1;

    public LogIndex LastIndex => SnapshotIndex + entries.Count;

    public Term LastTerm => entries.Count == 0 ? SnapshotTerm : entries[^1].Term;

    /// <summary>Entries up to here were handed to the host to persist.</summary>
    public LogIndex Written { get; private set; }

    /// <summary>Entries up to here are durable on this replica.</summary>
    public LogIndex Stable { get; private set; }

    public LogIndex Committed { get; private set; }

    /// <summary>Entries up to here were handed to the host to apply.</summary>
    public LogIndex Applied { get; private set; }

    /// <summary>The term of entry <paramref name="index"/>; <see cref="Unknown"/> when it is compacted away or beyond the end.</summary>
    public Term Term(LogIndex index)
    {
        if (index == SnapshotIndex)
        {
            return SnapshotTerm;
        }

        return index < FirstIndex || index > LastIndex ? Unknown : entries[(int)(index - FirstIndex)].Term;
    }

    public bool MatchTerm(LogIndex index, Term term) => Term(index) == term;

    public Entry At(LogIndex index) => entries[(int)(index - FirstIndex)];

    // Recent hashes, by index: a leader hashes the same few entries (the previous entry of each append, the commit
    // index of each heartbeat) once per peer. An entry is recognised by its memory as well, so a replaced one is rehashed.
    private const int HashSlots = 8; // a power of two: the slot is the index's low bits
    private readonly (LogIndex Index, ReadOnlyMemory<byte> Data, ulong Hash)[] hashed = new (LogIndex, ReadOnlyMemory<byte>, ulong)[
        HashSlots
    ];

    /// <summary>The hash of entry <paramref name="index"/> (<see cref="HashOf"/>); 0 when it is compacted away or beyond the end.</summary>
    public ulong HashAt(LogIndex index)
    {
        if (index < FirstIndex || index > LastIndex)
        {
            return 0;
        }

        var entry = entries[(int)(index - FirstIndex)];
        ref var slot = ref hashed[(int)(index.Value & (HashSlots - 1))];
        if (slot.Index == index && slot.Data.Equals(entry.Data) && slot.Hash != 0)
        {
            return slot.Hash;
        }

        slot = (index, entry.Data, HashOf(entry));
        return slot.Hash;
    }

    /// <summary>A 64-bit hash of an entry's kind and bytes (XXH3), never 0 (0 means "not known").</summary>
    public static ulong HashOf(in Entry entry)
    {
        var hash = System.IO.Hashing.XxHash3.HashToUInt64(entry.Data.Span, (long)entry.Type);
        return hash == 0 ? 1 : hash;
    }

    /// <summary>
    /// Whether a log ending at (<paramref name="lastIndex"/>, <paramref name="lastTerm"/>) is at least as up to date as
    /// this one (thesis §3.6.1).
    /// </summary>
    public bool IsUpToDate(LogIndex lastIndex, Term lastTerm) => lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

    /// <summary>The leader's own append.</summary>
    public void Append(Entry entry)
    {
        if (entry.Index != LastIndex + 1 || entry.Term < LastTerm)
        {
            throw new InvalidOperationException(
                "append out of order: entry " + entry.Index + " term " + entry.Term + " after " + LastIndex + " term " + LastTerm
            );
        }

        entries.Add(entry);
        changedFrom = LogIndex.Min(changedFrom, entry.Index);
    }

    /// <summary>Where the log changed since the last call (<see cref="NoChange"/>: nowhere), and forget it.</summary>
    public LogIndex TakeChanges()
    {
        var from = changedFrom;
        changedFrom = NoChange;
        return from;
    }

    /// <summary>Drops entries up to <paramref name="index"/> (a snapshot covers them); the term of the last one stays known.</summary>
    public void CompactTo(LogIndex index)
    {
        if (index <= SnapshotIndex)
        {
            return;
        }

        if (index > Applied || index > Stable)
        {
            throw new InvalidOperationException("cannot compact to " + index + ": applied " + Applied + ", durable " + Stable);
        }

        SnapshotTerm = Term(index);
        entries.RemoveRange(0, (int)(index - SnapshotIndex));
        SnapshotIndex = index;
    }

    /// <summary>
    /// Replaces the whole log with a snapshot ending at (<paramref name="index"/>, <paramref name="term"/>) (everything
    /// in it is committed).
    /// </summary>
    public void ResetTo(LogIndex index, Term term)
    {
        changedFrom = LogIndex.Min(changedFrom, LogIndex.Min(index, FirstIndex));
        entries.Clear();
        SnapshotIndex = index;
        SnapshotTerm = term;
        Written = Stable = Committed = Applied = index;
    }

    /// <summary>
    /// A follower's append of the leader's entries after (<paramref name="prevIndex"/>, its term, already matched): skips
    /// entries it already has, truncates at the first conflict, appends the rest. Returns the last index now known to
    /// match the leader. A conflict at or below the commit index would break safety and is never applied.
    /// </summary>
    public LogIndex? AppendFromLeader(LogIndex prevIndex, IReadOnlyList<Entry> incoming)
    {
        var i = 0;
        for (; i < incoming.Count; i++)
        {
            var entry = incoming[i];
            if (entry.Index <= SnapshotIndex)
            {
                continue; // compacted here, so committed, so it matches (Log Matching)
            }

            if (Holds(entry))
            {
                continue;
            }

            if (entry.Index <= LastIndex)
            {
                if (entry.Index <= Committed)
                {
                    return null; // a correct leader never sends this (Leader Completeness): the caller drops the message
                }

                TruncateFrom(entry.Index);
            }

            break;
        }

        for (; i < incoming.Count; i++)
        {
            if (incoming[i].Index > SnapshotIndex)
            {
                Append(incoming[i]);
            }
        }

        return prevIndex + incoming.Count;
    }

    /// <summary>
    /// Whether this log holds <paramref name="entry"/> itself: the same term and the same bytes. Log Matching says the
    /// same index and term mean the same entry, but an entry that came from a forger (or a buggy peer) breaks that, so
    /// an entry already held is compared byte for byte before it is kept in place of the leader's.
    /// </summary>
    private bool Holds(in Entry entry)
    {
        if (Term(entry.Index) != entry.Term)
        {
            return false;
        }

        var held = entries[(int)(entry.Index - FirstIndex)];
        return held.Type == entry.Type && held.Data.Span.SequenceEqual(entry.Data.Span);
    }

    private void TruncateFrom(LogIndex index)
    {
        changedFrom = LogIndex.Min(changedFrom, index);
        entries.RemoveRange((int)(index - FirstIndex), (int)(LastIndex - index + 1));
        Written = LogIndex.Min(Written, index - 1);
        Stable = LogIndex.Min(Stable, index - 1);
    }

    public void CommitTo(LogIndex index)
    {
        if (index > Committed)
        {
            if (index > LastIndex)
            {
                throw new InvalidOperationException("commit " + index + " beyond the last index " + LastIndex);
            }

            Committed = index;
        }
    }

    /// <summary>Entries the host has not been given to persist yet.</summary>
    /// <summary>Fills <paramref name="into"/> (cleared first) with the entries not yet handed to storage.</summary>
    public void Unwritten(List<Entry> into)
    {
        into.Clear();
        for (var index = Written + 1; index <= LastIndex; index++)
        {
            into.Add(At(index));
        }
    }

    public void MarkWritten(LogIndex index) => Written = LogIndex.Max(Written, LogIndex.Min(index, LastIndex));

    /// <summary>
    /// The host reports entries up to (<paramref name="index"/>, <paramref name="term"/>) durable; ignored if the log
    /// changed since.
    /// </summary>
    public bool MarkStable(LogIndex index, Term term)
    {
        // The report may come before Advance marked the entries written (asynchronous storage): any entry in the log
        // whose term matches counts.
        if (index > LastIndex || !MatchTerm(index, term) || index <= Stable)
        {
            return false;
        }

        Stable = index;
        Written = LogIndex.Max(Written, index);
        return true;
    }

    /// <summary>
    /// Fills <paramref name="into"/> (cleared first) with committed entries this replica has persisted and not yet
    /// handed out to apply.
    /// </summary>
    public void Unapplied(List<Entry> into)
    {
        into.Clear();
        var upTo = LogIndex.Min(Committed, Stable);
        for (var index = LogIndex.Max(Applied + 1, FirstIndex); index <= upTo; index++)
        {
            into.Add(At(index));
        }
    }

    public void MarkApplied(LogIndex index) => Applied = LogIndex.Max(Applied, index);

    /// <summary>Entries (<paramref name="after"/>, …] up to <paramref name="bytesMax"/> bytes (at least one entry when any).</summary>
    public List<Entry> Slice(LogIndex after, long bytesMax, out long bytes)
    {
        var list = new List<Entry>();
        bytes = 0;
        for (var index = after + 1; index <= LastIndex; index++)
        {
            var entry = At(index);
            if (list.Count > 0 && bytes + entry.Data.Length > bytesMax)
            {
                break;
            }

            list.Add(entry);
            bytes += entry.Data.Length;
        }

        return list;
    }

    /// <summary>
    /// The first index of the term of entry <paramref name="index"/> (for a rejection hint: skip the whole conflicting
    /// term).
    /// </summary>
    public LogIndex FirstIndexOfTermAt(LogIndex index)
    {
        var term = Term(index);
        while (index - 1 > SnapshotIndex && Term(index - 1) == term)
        {
            index--;
        }

        return index;
    }
}
