namespace FastSmr.Raft;

/// <summary>
/// The core's view of the log: every entry after the compaction point, in memory, with three marks — written (handed
/// to the host to persist), stable (the host reported it durable) and committed — plus the applied mark (handed to
/// the host to apply). Invariants, checked on every change: applied ≤ committed ≤ last; stable ≤ written ≤ last.
/// </summary>
internal sealed class RaftLog
{
    private readonly List<Entry> entries = [];

    public RaftLog(long snapshotIndex, long snapshotTerm, IReadOnlyList<Entry> persisted, long commit)
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
        Committed = Math.Clamp(commit, snapshotIndex, LastIndex);
        Applied = snapshotIndex;
    }

    /// <summary>
    /// The lowest index added, removed or replaced since the last <see cref="TakeChanges"/> (configs are rescanned from
    /// there).
    /// </summary>
    private long changedFrom = long.MaxValue;

    public long SnapshotIndex { get; private set; }

    public long SnapshotTerm { get; private set; }

    public long FirstIndex => SnapshotIndex + 1;

    public long LastIndex => SnapshotIndex + entries.Count;

    public long LastTerm => entries.Count == 0 ? SnapshotTerm : entries[^1].Term;

    /// <summary>Entries up to here were handed to the host to persist.</summary>
    public long Written { get; private set; }

    /// <summary>Entries up to here are durable on this replica.</summary>
    public long Stable { get; private set; }

    public long Committed { get; private set; }

    /// <summary>Entries up to here were handed to the host to apply.</summary>
    public long Applied { get; private set; }

    /// <summary>The term of entry <paramref name="index"/>; -1 when it is compacted away or beyond the end.</summary>
    public long Term(long index)
    {
        if (index == SnapshotIndex)
        {
            return SnapshotTerm;
        }

        return index < FirstIndex || index > LastIndex ? -1 : entries[(int)(index - FirstIndex)].Term;
    }

    public bool MatchTerm(long index, long term) => Term(index) == term;

    public Entry At(long index) => entries[(int)(index - FirstIndex)];

    /// <summary>
    /// Whether a log ending at (<paramref name="lastIndex"/>, <paramref name="lastTerm"/>) is at least as up to date as
    /// this one (thesis §3.6.1).
    /// </summary>
    public bool IsUpToDate(long lastIndex, long lastTerm) => lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

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
        changedFrom = Math.Min(changedFrom, entry.Index);
    }

    /// <summary>Where the log changed since the last call (long.MaxValue: nowhere), and forget it.</summary>
    public long TakeChanges()
    {
        var from = changedFrom;
        changedFrom = long.MaxValue;
        return from;
    }

    /// <summary>Drops entries up to <paramref name="index"/> (a snapshot covers them); the term of the last one stays known.</summary>
    public void CompactTo(long index)
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
    public void ResetTo(long index, long term)
    {
        changedFrom = Math.Min(changedFrom, Math.Min(index, FirstIndex));
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
    public long AppendFromLeader(long prevIndex, IReadOnlyList<Entry> incoming)
    {
        var i = 0;
        for (; i < incoming.Count; i++)
        {
            var entry = incoming[i];
            if (entry.Index != prevIndex + 1 + i)
            {
                throw new InvalidOperationException("entries in an append are not consecutive");
            }

            if (entry.Index <= SnapshotIndex)
            {
                continue; // compacted here, so committed, so it matches (Log Matching)
            }

            var term = Term(entry.Index);
            if (term == entry.Term)
            {
                continue;
            }

            if (term != -1)
            {
                if (entry.Index <= Committed)
                {
                    throw new InvalidOperationException(
                        "SAFETY: the leader's entry "
                            + entry.Index
                            + " (term "
                            + entry.Term
                            + ") conflicts with a committed entry of term "
                            + term
                    );
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

    private void TruncateFrom(long index)
    {
        changedFrom = Math.Min(changedFrom, index);
        entries.RemoveRange((int)(index - FirstIndex), (int)(LastIndex - index + 1));
        Written = Math.Min(Written, index - 1);
        Stable = Math.Min(Stable, index - 1);
    }

    public void CommitTo(long index)
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

    public void MarkWritten(long index) => Written = Math.Max(Written, Math.Min(index, LastIndex));

    /// <summary>
    /// The host reports entries up to (<paramref name="index"/>, <paramref name="term"/>) durable; ignored if the log
    /// changed since.
    /// </summary>
    public bool MarkStable(long index, long term)
    {
        // The report may come before Advance marked the entries written (asynchronous storage): any entry in the log
        // whose term matches counts.
        if (index > LastIndex || !MatchTerm(index, term) || index <= Stable)
        {
            return false;
        }

        Stable = index;
        Written = Math.Max(Written, index);
        return true;
    }

    /// <summary>
    /// Fills <paramref name="into"/> (cleared first) with committed entries this replica has persisted and not yet
    /// handed out to apply.
    /// </summary>
    public void Unapplied(List<Entry> into)
    {
        into.Clear();
        var upTo = Math.Min(Committed, Stable);
        for (var index = Math.Max(Applied + 1, FirstIndex); index <= upTo; index++)
        {
            into.Add(At(index));
        }
    }

    public void MarkApplied(long index) => Applied = Math.Max(Applied, index);

    /// <summary>Entries (<paramref name="after"/>, …] up to <paramref name="bytesMax"/> bytes (at least one entry when any).</summary>
    public List<Entry> Slice(long after, long bytesMax, out long bytes)
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
    public long FirstIndexOfTermAt(long index)
    {
        var term = Term(index);
        while (index - 1 > SnapshotIndex && Term(index - 1) == term)
        {
            index--;
        }

        return index;
    }
}
