using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

// Opening a log: finding the segments, finishing an interrupted reset or compaction, truncating a torn tail and
// refusing damage to durable records.
public sealed unsafe partial class SegmentedLog
{
    private static void OpenSegments(string directory, LogOptions options, List<Segment> segments)
    {
        foreach (var leftover in Directory.EnumerateFiles(directory, "*" + SegmentExtension + ".tmp"))
        {
            File.Delete(leftover); // a segment whose creation did not finish: never held a record
        }

        var names = Directory.EnumerateFiles(directory, "*" + SegmentExtension).Order(StringComparer.Ordinal).ToList();
        Span<byte> header = stackalloc byte[SegmentHeader.Size];
        foreach (var path in names)
        {
            var name = Path.GetFileName(path);
            if (
                !long.TryParse(Path.GetFileNameWithoutExtension(path), NumberStyles.None, CultureInfo.InvariantCulture, out var named)
                || Segment.FileName(named) != name
            )
            {
                throw new InvalidDataException(path + ": not a segment name (20 digits of its first index, then " + SegmentExtension + ")");
            }

            if (segments.Count > 0 && segments[^1].FirstIndex >= named)
            {
                throw new InvalidDataException(path + ": first index does not follow the previous segment's");
            }

            segments.Add(OpenSegment(path, named, options, header));
        }
    }

    /// <summary>Opens one segment file and checks its length and header against its name and this log's identity.</summary>
    private static Segment OpenSegment(string path, long named, LogOptions options, Span<byte> header)
    {
        var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        try
        {
            var length = RandomAccess.GetLength(file);
            if (length < LogOptions.MinSegmentSize || length > LogOptions.MaxSegmentSize || length % 4096 != 0)
            {
                throw new InvalidDataException(
                    path
                        + ": length "
                        + length.ToString(CultureInfo.InvariantCulture)
                        + " is not a segment size (a multiple of 4 KiB between 4 KiB and 1 GiB)"
                );
            }

            if (RandomAccess.Read(file, header, 0) < SegmentHeader.Size)
            {
                throw new InvalidDataException(path + ": cannot read the segment header");
            }

            var read = SegmentHeader.Read(header, path);
            if (read.FirstIndex != named)
            {
                throw new InvalidDataException(
                    path
                        + ": header says first index "
                        + read.FirstIndex.ToString(CultureInfo.InvariantCulture)
                        + " but the name says "
                        + named.ToString(CultureInfo.InvariantCulture)
                );
            }

            if (read.ClusterId != options.ClusterId || read.NodeId != options.NodeId.Value)
            {
                throw new InvalidDataException(
                    path
                        + ": belongs to cluster "
                        + read.ClusterId.ToString(CultureInfo.InvariantCulture)
                        + " node "
                        + read.NodeId.ToString(CultureInfo.InvariantCulture)
                        + ", this log is cluster "
                        + options.ClusterId.ToString(CultureInfo.InvariantCulture)
                        + " node "
                        + options.NodeId.ToString()
                );
            }

            return new Segment(path, file, length, named);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private void Recover()
    {
        var compacted = MetaCompacted;
        if (DeleteCompactedSegments())
        {
            Syscalls.SyncDirectory(directory);
        }

        if (segments.Count == 0)
        {
            segments.Add(CreateSegment(compacted + 1));
        }

        if (segments[0].FirstIndex > compacted + 1)
        {
            throw new InvalidDataException(
                segments[0].Path
                    + ": the log starts at index "
                    + segments[0].FirstIndex.ToString(CultureInfo.InvariantCulture)
                    + " but entries are compacted only up to "
                    + compacted.ToString(CultureInfo.InvariantCulture)
                    + " (segments are missing)"
            );
        }

        var tail = RecoverTail();
        lastIndex = tail.Count > 0 ? tail.LastIndex : tail.FirstIndex - 1;
        if (lastIndex < compacted || (compacted >= segments[0].FirstIndex && SegmentFor(compacted).TermOf(compacted) != MetaCompactedTerm))
        {
            // An interrupted Reset: the metadata already names the snapshot, the old segments are still there. They hold
            // nothing the snapshot does not replace (a log that agrees at the compacted index was never reset).
            DropAllSegments();
            segments.Add(CreateSegment(compacted + 1));
            tail = segments[^1];
            lastIndex = compacted;
        }

        lastTerm = lastIndex == compacted ? MetaCompactedTerm : SegmentFor(lastIndex).TermOf(lastIndex);
        if (MetaCommit > lastIndex)
        {
            throw new InvalidDataException(
                directory
                    + ": committed up to index "
                    + MetaCommit.ToString(CultureInfo.InvariantCulture)
                    + " but the log ends at "
                    + lastIndex.ToString(CultureInfo.InvariantCulture)
                    + ": durable records are missing"
            );
        }

        pendingOffset = tail.End;
        durableIndex = lastIndex;
    }

    /// <summary>
    /// Scans the last segment, the only one that can hold unsynced records: a torn tail is erased, damage before a record
    /// that was written after it was durable is refused as corruption.
    /// </summary>
    private Segment RecoverTail()
    {
        // Whatever a killed process left in the page cache — names and data — is made durable before it is trusted,
        // and the tail's cached pages are dropped so the scan reads what the disk holds (after a failed sync in an
        // earlier life, the kernel may have marked unwritten pages clean; only the disk tells the truth).
        Syscalls.SyncDirectory(directory);
        var tail = segments[^1];
        Sync(tail, dataOnly: true);
        Syscalls.DropCache(tail.File);
        var (stop, error, _) = tail.Scan(SegmentHeader.Size, 0);
        tail.Indexed = true;
        tail.End = stop;
        if (stop + LogRecord.HeaderSize <= tail.Size)
        {
            var missing = tail.FirstIndex + tail.Count;
            var claim = tail.FindDurabilityClaim(stop, missing);
            if (claim >= 0)
            {
                throw new InvalidDataException(
                    tail.Path
                        + ": record "
                        + missing.ToString(CultureInfo.InvariantCulture)
                        + " at offset "
                        + stop.ToString(CultureInfo.InvariantCulture)
                        + " is damaged ("
                        + Describe(error)
                        + ") but the record at offset "
                        + claim.ToString(CultureInfo.InvariantCulture)
                        + " was written after it was durable: corruption, not a torn write"
                );
            }

            if (tail.From(stop).ContainsAnyExcept((byte)0))
            {
                // A torn tail: bytes of writes that never became durable. Zero them before anything is appended here.
                Erase(tail, stop, tail.Size - stop);
                Sync(tail, dataOnly: false);
            }
        }

        return tail;
    }

    private static string Describe(LogRecordError error) =>
        error switch
        {
            LogRecordError.None => "intact but out of sequence",
            LogRecordError.Empty => "missing: zeros",
            LogRecordError.Truncated => "cut short",
            LogRecordError.BadHeader => "impossible header",
            _ => "checksum mismatch",
        };
}
