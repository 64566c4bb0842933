using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

// Removing records: suffix truncation (a Raft conflict; durable before it returns), prefix compaction and reset to a snapshot.
public sealed unsafe partial class SegmentedLog
{
    /// <summary>
    /// Replaces the whole log by a snapshot's place in it: durably records (<paramref name="index"/>, <paramref name="term"/>)
    /// as compacted and committed, then removes every segment and starts an empty one at <paramref name="index"/> + 1.
    /// A crash half way is finished by the next open (a log that ends below, or disagrees at, the compacted index is dropped).
    /// </summary>
    public void Reset(LogIndex index, Term term)
    {
        var at = index.Value;
        var atTerm = term.Value;
        ArgumentOutOfRangeException.ThrowIfNegative(at);
        ArgumentOutOfRangeException.ThrowIfNegative(atTerm);
        lock (syncGate)
        {
            lock (state)
            {
                ThrowIfUnwritable();
                if (at < MetaCommit || at < MetaCompacted)
                {
                    throw new InvalidOperationException(
                        "cannot reset the log to index "
                            + at.ToString(CultureInfo.InvariantCulture)
                            + ": committed up to "
                            + MetaCommit.ToString(CultureInfo.InvariantCulture)
                            + ", compacted up to "
                            + MetaCompacted.ToString(CultureInfo.InvariantCulture)
                    );
                }

                pending = 0; // the records in the buffer are discarded with the rest
                metadata.Update(Meta with { CompactedIndex = index, CompactedTerm = term, CommitIndex = index });
                try
                {
                    DropAllSegments();
                    segments.Add(CreateSegment(at + 1));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw Fail("resetting the log to index " + at.ToString(CultureInfo.InvariantCulture) + " failed: " + e.Message);
                }

                pendingOffset = SegmentHeader.Size;
                lastIndex = at;
                lastTerm = atTerm;
                Volatile.Write(ref durableIndex, at);
            }
        }
    }

    /// <summary>
    /// Removes records from <paramref name="fromIndex"/> on (a Raft conflict). Durable when it returns, so no later
    /// append can be reported durable while the removed records could come back. Refused at or below the commit index.
    /// </summary>
    public void TruncateSuffix(LogIndex fromIndex)
    {
        var from = fromIndex.Value;
        lock (syncGate)
        {
            lock (state)
            {
                ThrowIfUnwritable();
                if (from > lastIndex)
                {
                    return;
                }

                if (from <= MetaCommit || from <= MetaCompacted)
                {
                    throw new InvalidOperationException(
                        "cannot truncate from index "
                            + from.ToString(CultureInfo.InvariantCulture)
                            + ": committed up to "
                            + MetaCommit.ToString(CultureInfo.InvariantCulture)
                            + ", compacted up to "
                            + MetaCompacted.ToString(CultureInfo.InvariantCulture)
                    );
                }

                WritePending();
                var keep = SegmentFor(from);
                var offset = keep.OffsetOf(from);
                var oldEnd = keep.End;
                var removed = DetachSegmentsAfter(keep);

                // The in-memory log is cut first, so whatever happens below, reads never see the removed records.
                keep.CutAt(from);
                keep.End = offset;
                pendingOffset = offset;
                lastIndex = from - 1;
                lastTerm = lastIndex >= First ? SegmentFor(lastIndex).TermOf(lastIndex) : MetaCompactedTerm;
                Volatile.Write(ref durableIndex, Math.Min(durableIndex, lastIndex));
                try
                {
                    // Later segments go first (newest first), so a crash half way leaves a shorter log, never a gap.
                    foreach (var segment in removed)
                    {
                        File.Delete(segment.Path);
                    }

                    if (removed.Count > 0)
                    {
                        Syscalls.SyncDirectory(directory);
                    }

                    Erase(keep, offset, oldEnd - offset);
                    Sync(keep, dataOnly: false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Half a truncation on disk: only a restart (recovery) can say what the log holds now.
                    throw Fail("truncation from index " + from.ToString(CultureInfo.InvariantCulture) + " failed: " + e.Message);
                }
                finally
                {
                    removed.ForEach(segment => segment.Release());
                }
            }
        }
    }

    /// <summary>Takes every segment after <paramref name="keep"/> out of the list, newest first (under <c>state</c>).</summary>
    private List<Segment> DetachSegmentsAfter(Segment keep)
    {
        var removed = new List<Segment>();
        while (segments[^1] != keep)
        {
            removed.Add(segments[^1]);
            segments.RemoveAt(segments.Count - 1);
        }

        return removed;
    }

    /// <summary>
    /// Records durably that entries up to <paramref name="upToIndex"/> are compacted (with that entry's term), then
    /// deletes every segment holding only compacted entries. Only durable entries can be compacted.
    /// </summary>
    public void CompactPrefix(LogIndex upToIndex)
    {
        var upTo = upToIndex.Value;
        lock (state)
        {
            ThrowIfUnwritable();
            if (upTo <= MetaCompacted)
            {
                return;
            }

            if (upTo > durableIndex)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(upToIndex),
                    upTo,
                    "only durable entries can be compacted (durable up to " + durableIndex.ToString(CultureInfo.InvariantCulture) + ")"
                );
            }

            var term = SegmentFor(upTo).TermOf(upTo);
            metadata.Update(Meta with { CompactedIndex = upToIndex, CompactedTerm = new Term(term) });
            try
            {
                if (DeleteCompactedSegments())
                {
                    Syscalls.SyncDirectory(directory);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Fail("deleting compacted segments failed: " + e.Message);
            }
        }
    }

    private void DropAllSegments()
    {
        // Newest first, as a truncation does: a crash half way leaves a prefix, which the next open drops as well.
        for (var i = segments.Count - 1; i >= 0; i--)
        {
            var segment = segments[i];
            segments.RemoveAt(i);
            try
            {
                File.Delete(segment.Path);
            }
            finally
            {
                segment.Release();
            }
        }

        Syscalls.SyncDirectory(directory);
    }

    private bool DeleteCompactedSegments()
    {
        var compacted = MetaCompacted;
        var deleted = false;
        while (segments.Count > 1 && segments[1].FirstIndex <= compacted + 1)
        {
            var segment = segments[0];
            segments.RemoveAt(0);
            try
            {
                File.Delete(segment.Path);
            }
            finally
            {
                segment.Release();
            }

            deleted = true;
        }

        return deleted;
    }

    /// <summary>
    /// Makes [offset, offset+length) of a segment read as zeros: a punched hole, or written zeros where holes are not
    /// supported.
    /// </summary>
    private void Erase(Segment segment, long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }

        if (!Syscalls.PunchHole(segment.File, offset, length))
        {
            // Back to front: a crash half way leaves the removed records' tail zeroed and their head intact, never
            // zeros followed by old records that claim the zeroed ones were durable.
            var zeros = new byte[64 * 1024];
            for (var end = offset + length; end > offset; )
            {
                var chunk = (int)Math.Min(zeros.Length, end - offset);
                end -= chunk;
                RandomAccess.Write(segment.File, zeros.AsSpan(0, chunk), end);
            }
        }

        options.IoObserver?.Written(segment.Path, offset, length);
    }
}
