using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

// The segment files: which segment holds an index, sealing, rolling over to a new fallocated segment.
public sealed unsafe partial class SegmentedLog
{
    /// <summary>
    /// Finds the segment of <paramref name="index"/> for a reader, takes a reference and makes the record visible in
    /// the mapping.
    /// </summary>
    internal Segment AcquireFor(long index, long lastWanted)
    {
        lock (state)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (index < First || index > lastIndex)
            {
                throw new InvalidOperationException(
                    "record "
                        + index.ToString(CultureInfo.InvariantCulture)
                        + " is no longer in the log (truncated or compacted while being read)"
                );
            }

            var segment = SegmentFor(index);
            if (segment == segments[^1] && pending > 0 && segment.OffsetOf(Math.Min(lastWanted, lastIndex)) >= pendingOffset)
            {
                WritePending();
            }

            segment.TryAcquire();
            return segment;
        }
    }

    /// <summary>The segment holding <paramref name="index"/>, indexed (checking its CRCs the first time). Under the state lock.</summary>
    private Segment SegmentFor(long index)
    {
        int lo = 0,
            hi = segments.Count - 1;
        while (lo < hi)
        {
            var mid = (lo + hi + 1) / 2;
            if (segments[mid].FirstIndex <= index)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        var segment = segments[lo];
        if (!segment.Indexed)
        {
            IndexSealed(segment, lo);
        }

        return segment;
    }

    private void IndexSealed(Segment segment, int position)
    {
        var (stop, error, _) = segment.Scan(SegmentHeader.Size, 0);
        var expectedLast = segments[position + 1].FirstIndex - 1;
        if (segment.LastIndex != expectedLast)
        {
            throw new InvalidDataException(
                segment.Path
                    + ": record "
                    + (segment.LastIndex + 1).ToString(CultureInfo.InvariantCulture)
                    + " at offset "
                    + stop.ToString(CultureInfo.InvariantCulture)
                    + " is damaged ("
                    + Describe(error)
                    + "); the segment should hold records up to "
                    + expectedLast.ToString(CultureInfo.InvariantCulture)
            );
        }

        if (stop < segment.Size && segment.From(stop).ContainsAnyExcept((byte)0))
        {
            throw new InvalidDataException(
                segment.Path + ": unexpected bytes after the last record at offset " + stop.ToString(CultureInfo.InvariantCulture)
            );
        }

        segment.End = stop;
        segment.Indexed = true;
    }

    private void RollOver()
    {
        var old = segments[^1];
        WritePending();
        Sync(old, dataOnly: true);
        Volatile.Write(ref durableIndex, lastIndex);
        segments.Add(CreateSegment(lastIndex + 1));
        pendingOffset = SegmentHeader.Size;
    }

    private Segment CreateSegment(long firstIndex)
    {
        var path = Path.Combine(directory, Segment.FileName(firstIndex));
        var temporary = path + ".tmp";
        File.Delete(temporary); // left by a creation that failed earlier in this process
        var file = File.OpenHandle(temporary, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.Read);
        var renamed = false;
        try
        {
            if (!Syscalls.Allocate(file, options.SegmentSize))
            {
                RandomAccess.SetLength(file, options.SegmentSize); // no fallocate here: a sparse file still reads as zeros
            }

            Span<byte> header = stackalloc byte[SegmentHeader.Size];
            new SegmentHeader(options.ClusterId, options.NodeId.Value, firstIndex).Write(header);
            RandomAccess.Write(file, header, 0);
            if (!Syscalls.Fsync(file))
            {
                throw new IOException("fsync of new segment " + temporary + " failed: errno " + Syscalls.LastError);
            }

            File.Move(temporary, path);
            renamed = true;
            Syscalls.SyncDirectory(directory);
            options.IoObserver?.Written(path, 0, SegmentHeader.Size);
            options.IoObserver?.Synced(path);
            return new Segment(path, file, options.SegmentSize, firstIndex) { Indexed = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            file.Dispose();
            if (renamed)
            {
                // The name exists but may not be durable: only a restart can sort that out.
                throw Fail("creating segment " + path + " failed: " + e.Message);
            }

            File.Delete(temporary); // nothing refers to it; the append that needed it fails and may be retried
            throw;
        }
    }
}
