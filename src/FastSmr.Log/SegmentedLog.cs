using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

/// <summary>
/// A crash-safe log of records in fixed-size, preallocated segment files named by their first index.
/// <list type="bullet">
/// <item>Appends are copied into a write buffer and handed to the kernel with one <c>pwrite</c>; <see cref="Flush(long)"/>
/// and <see cref="FlushAsync"/> make them durable with one <c>fdatasync</c>, and concurrent flushes share it (group
/// commit). A failed sync is fatal: the log refuses every later write and says why.</item>
/// <item>Reads are zero-copy spans over a read-only mapping of the segment, valid while the <see cref="LogReader"/> that
/// returned them is on that segment (it holds a reference on the segment, so compaction cannot unmap it underneath).</item>
/// <item>Only the last segment can hold unsynced records (a roll-over syncs the old segment first), so recovery checks
/// the last segment at open and indexes the others lazily on first use, checking every CRC as it goes.</item>
/// </list>
/// Thread safety: every member may be called from any thread; appends, truncation and compaction are serialized.
/// </summary>
public sealed unsafe class SegmentedLog : IDisposable
{
    private const string MetadataFileName = "metadata";
    private const string SegmentExtension = ".seg";

    private readonly string directory;
    private readonly LogOptions options;
    private readonly LogMetadata metadata;
    private readonly List<Segment> segments;
    private readonly Lock state = new();
    private readonly Lock syncGate = new();
    private readonly byte* buffer;
    private readonly int bufferSize;
    private int pending;          // bytes in the buffer, all belonging to the tail segment
    private long pendingOffset;   // where buffer[0] goes in the tail segment
    private long lastIndex;
    private long lastTerm;
    private long durableIndex;
    private string? failure;
    private bool disposed;
    private TaskCompletionSource? nextFlush;
    private bool flusherRunning;

    private SegmentedLog(string directory, LogOptions options, LogMetadata metadata, List<Segment> segments)
    {
        this.directory = directory;
        this.options = options;
        this.metadata = metadata;
        this.segments = segments;
        bufferSize = options.WriteBufferSize;
        buffer = (byte*)NativeMemory.AlignedAlloc((nuint)bufferSize, 4096);
    }

    /// <summary>The first index that can be read (one past the last compacted entry).</summary>
    public long FirstIndex
    {
        get
        {
            lock (state)
            {
                return Meta.CompactedIndex + 1;
            }
        }
    }

    private LogMetadataState Meta => metadata.State;

    private long First => Meta.CompactedIndex + 1;

    /// <summary>The index of the last appended record (<see cref="FirstIndex"/> - 1 when empty).</summary>
    public long LastIndex
    {
        get
        {
            lock (state)
            {
                return lastIndex;
            }
        }
    }

    /// <summary>The term of the last record (the compacted term when the log holds none).</summary>
    public long LastTerm
    {
        get
        {
            lock (state)
            {
                return lastTerm;
            }
        }
    }

    /// <summary>Every record up to this index survives a crash.</summary>
    public long DurableIndex => Volatile.Read(ref durableIndex);

    /// <summary>The durable term, vote, commit index and compaction point.</summary>
    public LogMetadataState Metadata
    {
        get
        {
            lock (state)
            {
                return Meta;
            }
        }
    }

    /// <summary>Live segment files.</summary>
    public int SegmentCount
    {
        get
        {
            lock (state)
            {
                return segments.Count;
            }
        }
    }

    /// <summary>Why the log refuses writes, or null while it accepts them.</summary>
    public string? Failure => Volatile.Read(ref failure);

    /// <summary>
    /// Opens the log in <paramref name="directory"/> (creating it when absent), finishing an interrupted compaction,
    /// truncating a torn tail and refusing — with the segment and offset — damage to records that were durable.
    /// </summary>
    public static SegmentedLog Open(string directory, LogOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new LogOptions();
        options.Validate();
        directory = Path.GetFullPath(directory);
        if (!Directory.Exists(directory))
        {
            Directory.CreateDirectory(directory);
            Native.SyncDirectory(Path.GetDirectoryName(directory)!); // the log's own name must survive a crash too
        }

        var hasSegments = Directory.EnumerateFiles(directory, "*" + SegmentExtension).Any();
        var metadata = LogMetadata.Open(Path.Combine(directory, MetadataFileName), mustExist: hasSegments);

        var segments = new List<Segment>();
        SegmentedLog? log = null;
        try
        {
            OpenSegments(directory, options, segments);
            log = new SegmentedLog(directory, options, metadata, segments);
            log.Recover();
            return log;
        }
        catch
        {
            if (log is not null)
            {
                log.Dispose();
            }
            else
            {
                segments.ForEach(s => s.Release());
                metadata.Dispose();
            }

            throw;
        }
    }

    /// <summary>Appends an entry record with the next index and returns that index. Not durable until a flush covers it.</summary>
    public long Append(long term, ReadOnlySpan<byte> payload) => Append(term, payload, LogRecordType.Entry);

    /// <summary>Appends a record of <paramref name="type"/> with the next index and returns that index. Not durable until a flush covers it.</summary>
    public long Append(long term, ReadOnlySpan<byte> payload, LogRecordType type)
    {
        if (type is < LogRecordType.Entry or > LogRecordType.Config)
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "not a record type");
        }

        var size = LogRecord.Size(payload.Length);
        if (size > options.SegmentSize - SegmentHeader.Size || payload.Length > LogRecord.PayloadMax)
        {
            throw new ArgumentOutOfRangeException(nameof(payload), payload.Length, "a record must fit in one segment (" + options.SegmentSize.ToString(CultureInfo.InvariantCulture) + " bytes with its header) and be at most " + LogRecord.PayloadMax.ToString(CultureInfo.InvariantCulture) + " bytes");
        }

        lock (state)
        {
            ThrowIfUnwritable();
            if (term < lastTerm)
            {
                throw new ArgumentOutOfRangeException(nameof(term), term, "terms never go down in the log (the last record has term " + lastTerm.ToString(CultureInfo.InvariantCulture) + ")");
            }

            var tail = segments[^1];
            if (tail.End + size > tail.Size)
            {
                if (tail.Count == 0)
                {
                    throw new ArgumentOutOfRangeException(nameof(payload), payload.Length, "the record does not fit in the current segment (" + tail.Size.ToString(CultureInfo.InvariantCulture) + " bytes, created with another segment size)");
                }

                RollOver();
                tail = segments[^1];
            }

            var index = lastIndex + 1;
            var offset = tail.End;
            if (size > bufferSize - pending)
            {
                WritePending();
            }

            if (size <= bufferSize)
            {
                LogRecord.Write(new Span<byte>(buffer + pending, size), term, index, type, payload, durableIndex);
                pending += size;
            }
            else
            {
                WriteLarge(tail, offset, term, index, type, payload, size);
            }

            tail.Add(offset);
            tail.End = offset + size;
            lastIndex = index;
            lastTerm = term;
            return index;
        }
    }

    /// <summary>
    /// Hands every appended record to the kernel (one <c>pwrite</c>) without syncing: afterwards they survive a crash of
    /// this process, not of the machine. What the <c>memory</c> durability mode acknowledges.
    /// </summary>
    public void Submit()
    {
        lock (state)
        {
            ThrowIfUnwritable();
            WritePending();
        }
    }

    /// <summary>
    /// Replaces the whole log by a snapshot's place in it: durably records (<paramref name="index"/>, <paramref name="term"/>)
    /// as compacted and committed, then removes every segment and starts an empty one at <paramref name="index"/> + 1.
    /// A crash half way is finished by the next open (a log that ends below, or disagrees at, the compacted index is dropped).
    /// </summary>
    public void Reset(long index, long term)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfNegative(term);
        lock (syncGate)
        {
            lock (state)
            {
                ThrowIfUnwritable();
                if (index < Meta.CommitIndex || index < Meta.CompactedIndex)
                {
                    throw new InvalidOperationException("cannot reset the log to index " + index.ToString(CultureInfo.InvariantCulture) + ": committed up to " + Meta.CommitIndex.ToString(CultureInfo.InvariantCulture) + ", compacted up to " + Meta.CompactedIndex.ToString(CultureInfo.InvariantCulture));
                }

                pending = 0; // the records in the buffer are discarded with the rest
                metadata.Update(Meta with { CompactedIndex = index, CompactedTerm = term, CommitIndex = index });
                try
                {
                    DropAllSegments();
                    segments.Add(CreateSegment(index + 1));
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    throw Fail("resetting the log to index " + index.ToString(CultureInfo.InvariantCulture) + " failed: " + e.Message);
                }

                pendingOffset = SegmentHeader.Size;
                lastIndex = index;
                lastTerm = term;
                Volatile.Write(ref durableIndex, index);
            }
        }
    }

    /// <summary>Makes every record appended so far durable.</summary>
    public void Flush() => Flush(long.MaxValue);

    /// <summary>
    /// Makes records up to <paramref name="upToIndex"/> durable (all appended ones, if beyond the end). Callers that
    /// arrive while a sync runs wait for it and then share the next one.
    /// </summary>
    public void Flush(long upToIndex)
    {
        if (Volatile.Read(ref durableIndex) >= upToIndex)
        {
            return;
        }

        lock (syncGate)
        {
            Segment tail;
            long target;
            lock (state)
            {
                ThrowIfUnwritable();
                if (durableIndex >= Math.Min(upToIndex, lastIndex))
                {
                    return;
                }

                WritePending();
                target = lastIndex;
                tail = segments[^1];
                tail.TryAcquire();
            }

            try
            {
                if (!options.SkipSyncForTesting)
                {
                    Sync(tail, dataOnly: true);
                }
            }
            finally
            {
                tail.Release();
            }

            lock (state)
            {
                if (target > durableIndex)
                {
                    Volatile.Write(ref durableIndex, target);
                }
            }
        }
    }

    /// <summary>
    /// Completes when records up to <paramref name="upToIndex"/> are durable. Requests arriving while a sync runs are
    /// coalesced into the next single sync (group commit); completes synchronously when already durable.
    /// </summary>
    public ValueTask FlushAsync(long upToIndex, CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref durableIndex) >= upToIndex)
        {
            return ValueTask.CompletedTask;
        }

        Task task;
        lock (state)
        {
            ThrowIfUnwritable();
            if (durableIndex >= Math.Min(upToIndex, lastIndex))
            {
                return ValueTask.CompletedTask;
            }

            nextFlush ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            task = nextFlush.Task;
            if (!flusherRunning)
            {
                flusherRunning = true;
                ThreadPool.UnsafeQueueUserWorkItem(static log => log.RunFlusher(), this, preferLocal: false);
            }
        }

        return new ValueTask(cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task);
    }

    /// <summary>Records [<paramref name="fromIndex"/>, <paramref name="toIndex"/>] to read with <c>foreach</c> (zero-copy, no allocation).</summary>
    public LogRange Read(long fromIndex, long toIndex)
    {
        lock (state)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (fromIndex < First || toIndex > lastIndex || fromIndex > toIndex + 1)
            {
                throw new ArgumentOutOfRangeException(nameof(fromIndex), "cannot read [" + fromIndex.ToString(CultureInfo.InvariantCulture) + ", " + toIndex.ToString(CultureInfo.InvariantCulture) + "]: the log holds [" + First.ToString(CultureInfo.InvariantCulture) + ", " + lastIndex.ToString(CultureInfo.InvariantCulture) + "]");
            }
        }

        return new LogRange(this, fromIndex, toIndex);
    }

    /// <summary>The term of record <paramref name="index"/>; the compacted term for the last compacted index.</summary>
    public long TermAt(long index)
    {
        lock (state)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (index == Meta.CompactedIndex)
            {
                return Meta.CompactedTerm;
            }

            if (index < First || index > lastIndex)
            {
                throw new ArgumentOutOfRangeException(nameof(index), index, "the log holds [" + First.ToString(CultureInfo.InvariantCulture) + ", " + lastIndex.ToString(CultureInfo.InvariantCulture) + "]");
            }

            return SegmentFor(index).TermOf(index);
        }
    }

    /// <summary>
    /// Removes records from <paramref name="fromIndex"/> on (a Raft conflict). Durable when it returns, so no later
    /// append can be reported durable while the removed records could come back. Refused at or below the commit index.
    /// </summary>
    public void TruncateSuffix(long fromIndex)
    {
        lock (syncGate)
        {
            lock (state)
            {
                ThrowIfUnwritable();
                if (fromIndex > lastIndex)
                {
                    return;
                }

                if (fromIndex <= Meta.CommitIndex || fromIndex <= Meta.CompactedIndex)
                {
                    throw new InvalidOperationException("cannot truncate from index " + fromIndex.ToString(CultureInfo.InvariantCulture) + ": committed up to " + Meta.CommitIndex.ToString(CultureInfo.InvariantCulture) + ", compacted up to " + Meta.CompactedIndex.ToString(CultureInfo.InvariantCulture));
                }

                WritePending();
                var keep = SegmentFor(fromIndex);
                var offset = keep.OffsetOf(fromIndex);
                var oldEnd = keep.End;
                var removed = new List<Segment>();
                while (segments[^1] != keep)
                {
                    removed.Add(segments[^1]);
                    segments.RemoveAt(segments.Count - 1);
                }

                // The in-memory log is cut first, so whatever happens below, reads never see the removed records.
                keep.CutAt(fromIndex);
                keep.End = offset;
                pendingOffset = offset;
                lastIndex = fromIndex - 1;
                lastTerm = lastIndex >= First ? SegmentFor(lastIndex).TermOf(lastIndex) : Meta.CompactedTerm;
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
                        Native.SyncDirectory(directory);
                    }

                    Erase(keep, offset, oldEnd - offset);
                    Sync(keep, dataOnly: false);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException)
                {
                    // Half a truncation on disk: only a restart (recovery) can say what the log holds now.
                    throw Fail("truncation from index " + fromIndex.ToString(CultureInfo.InvariantCulture) + " failed: " + e.Message);
                }
                finally
                {
                    removed.ForEach(segment => segment.Release());
                }
            }
        }
    }

    /// <summary>
    /// Records durably that entries up to <paramref name="upToIndex"/> are compacted (with that entry's term), then
    /// deletes every segment holding only compacted entries. Only durable entries can be compacted.
    /// </summary>
    public void CompactPrefix(long upToIndex)
    {
        lock (state)
        {
            ThrowIfUnwritable();
            if (upToIndex <= Meta.CompactedIndex)
            {
                return;
            }

            if (upToIndex > durableIndex)
            {
                throw new ArgumentOutOfRangeException(nameof(upToIndex), upToIndex, "only durable entries can be compacted (durable up to " + durableIndex.ToString(CultureInfo.InvariantCulture) + ")");
            }

            var term = SegmentFor(upToIndex).TermOf(upToIndex);
            metadata.Update(Meta with { CompactedIndex = upToIndex, CompactedTerm = term });
            try
            {
                if (DeleteCompactedSegments())
                {
                    Native.SyncDirectory(directory);
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw Fail("deleting compacted segments failed: " + e.Message);
            }
        }
    }

    /// <summary>Durably records term, vote and commit index (atomic: after a crash, either all old or all new).</summary>
    public void SaveState(long term, uint votedFor, long commitIndex)
    {
        lock (state)
        {
            ThrowIfUnwritable();
            var current = Meta;
            if (term < current.Term || commitIndex < current.CommitIndex)
            {
                throw new ArgumentOutOfRangeException(nameof(term), "term and commit index never go down (now term " + current.Term.ToString(CultureInfo.InvariantCulture) + ", commit " + current.CommitIndex.ToString(CultureInfo.InvariantCulture) + ")");
            }

            if (commitIndex > durableIndex)
            {
                throw new ArgumentOutOfRangeException(nameof(commitIndex), commitIndex, "the commit index cannot pass the durable index " + durableIndex.ToString(CultureInfo.InvariantCulture));
            }

            metadata.Update(current with { Term = term, VotedFor = votedFor, CommitIndex = commitIndex });
        }
    }

    /// <summary>Makes everything appended durable and closes the files (readers still open keep their segments mapped).</summary>
    public void Dispose()
    {
        if (failure is null && !disposed)
        {
            try
            {
                Flush();
            }
            catch (IOException)
            {
                // The failure is recorded; closing goes on.
            }
        }

        Close();
    }

    /// <summary>Test-only: closes like a crash of the process would — the write buffer is lost, nothing is synced.</summary>
    internal void CrashForTesting()
    {
        lock (state)
        {
            pending = 0;
        }

        Close();
    }

    /// <summary>Finds the segment of <paramref name="index"/> for a reader, takes a reference and makes the record visible in the mapping.</summary>
    internal Segment AcquireFor(long index, long lastWanted)
    {
        lock (state)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (index < First || index > lastIndex)
            {
                throw new InvalidOperationException("record " + index.ToString(CultureInfo.InvariantCulture) + " is no longer in the log (truncated or compacted while being read)");
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
            if (!long.TryParse(Path.GetFileNameWithoutExtension(path), NumberStyles.None, CultureInfo.InvariantCulture, out var named) || Segment.FileName(named) != name)
            {
                throw new InvalidDataException(path + ": not a segment name (20 digits of its first index, then " + SegmentExtension + ")");
            }

            var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
            try
            {
                var length = RandomAccess.GetLength(file);
                if (length < LogOptions.MinSegmentSize || length > LogOptions.MaxSegmentSize || length % 4096 != 0)
                {
                    throw new InvalidDataException(path + ": length " + length.ToString(CultureInfo.InvariantCulture) + " is not a segment size (a multiple of 4 KiB between 4 KiB and 1 GiB)");
                }

                if (RandomAccess.Read(file, header, 0) < SegmentHeader.Size)
                {
                    throw new InvalidDataException(path + ": cannot read the segment header");
                }

                var read = SegmentHeader.Read(header, path);
                if (read.FirstIndex != named)
                {
                    throw new InvalidDataException(path + ": header says first index " + read.FirstIndex.ToString(CultureInfo.InvariantCulture) + " but the name says " + named.ToString(CultureInfo.InvariantCulture));
                }

                if (read.ClusterId != options.ClusterId || read.NodeId != options.NodeId)
                {
                    throw new InvalidDataException(path + ": belongs to cluster " + read.ClusterId.ToString(CultureInfo.InvariantCulture) + " node " + read.NodeId.ToString(CultureInfo.InvariantCulture) + ", this log is cluster " + options.ClusterId.ToString(CultureInfo.InvariantCulture) + " node " + options.NodeId.ToString(CultureInfo.InvariantCulture));
                }

                if (segments.Count > 0 && segments[^1].FirstIndex >= named)
                {
                    throw new InvalidDataException(path + ": first index does not follow the previous segment's");
                }

                segments.Add(new Segment(path, file, length, named));
            }
            catch
            {
                file.Dispose();
                throw;
            }
        }
    }

    private void Recover()
    {
        var compacted = Meta.CompactedIndex;
        if (DeleteCompactedSegments())
        {
            Native.SyncDirectory(directory);
        }

        if (segments.Count == 0)
        {
            segments.Add(CreateSegment(compacted + 1));
        }

        if (segments[0].FirstIndex > compacted + 1)
        {
            throw new InvalidDataException(segments[0].Path + ": the log starts at index " + segments[0].FirstIndex.ToString(CultureInfo.InvariantCulture) + " but entries are compacted only up to " + compacted.ToString(CultureInfo.InvariantCulture) + " (segments are missing)");
        }

        // Whatever a killed process left in the page cache — names and data — is made durable before it is trusted,
        // and the tail's cached pages are dropped so the scan reads what the disk holds (after a failed sync in an
        // earlier life, the kernel may have marked unwritten pages clean; only the disk tells the truth).
        Native.SyncDirectory(directory);
        var tail = segments[^1];
        Sync(tail, dataOnly: true);
        Native.DropCache(tail.File);
        var (stop, error, _) = tail.Scan(SegmentHeader.Size, 0);
        tail.Indexed = true;
        tail.End = stop;
        if (stop + LogRecord.HeaderSize <= tail.Size)
        {
            var missing = tail.FirstIndex + tail.Count;
            var claim = tail.FindDurabilityClaim(stop, missing);
            if (claim >= 0)
            {
                throw new InvalidDataException(tail.Path + ": record " + missing.ToString(CultureInfo.InvariantCulture) + " at offset " + stop.ToString(CultureInfo.InvariantCulture) + " is damaged (" + Describe(error) + ") but the record at offset " + claim.ToString(CultureInfo.InvariantCulture) + " was written after it was durable: corruption, not a torn write");
            }

            if (tail.From(stop).ContainsAnyExcept((byte)0))
            {
                // A torn tail: bytes of writes that never became durable. Zero them before anything is appended here.
                Erase(tail, stop, tail.Size - stop);
                Sync(tail, dataOnly: false);
            }
        }

        lastIndex = tail.Count > 0 ? tail.LastIndex : tail.FirstIndex - 1;
        if (lastIndex < compacted || (compacted >= segments[0].FirstIndex && SegmentFor(compacted).TermOf(compacted) != Meta.CompactedTerm))
        {
            // An interrupted Reset: the metadata already names the snapshot, the old segments are still there. They hold
            // nothing the snapshot does not replace (a log that agrees at the compacted index was never reset).
            DropAllSegments();
            segments.Add(CreateSegment(compacted + 1));
            tail = segments[^1];
            lastIndex = compacted;
        }

        lastTerm = lastIndex == compacted ? Meta.CompactedTerm : SegmentFor(lastIndex).TermOf(lastIndex);
        if (Meta.CommitIndex > lastIndex)
        {
            throw new InvalidDataException(directory + ": committed up to index " + Meta.CommitIndex.ToString(CultureInfo.InvariantCulture) + " but the log ends at " + lastIndex.ToString(CultureInfo.InvariantCulture) + ": durable records are missing");
        }

        pendingOffset = tail.End;
        durableIndex = lastIndex;
    }

    private static string Describe(LogRecordError error) => error switch
    {
        LogRecordError.None => "intact but out of sequence",
        LogRecordError.Empty => "missing: zeros",
        LogRecordError.Truncated => "cut short",
        LogRecordError.BadHeader => "impossible header",
        _ => "checksum mismatch",
    };

    /// <summary>The segment holding <paramref name="index"/>, indexed (checking its CRCs the first time). Under the state lock.</summary>
    private Segment SegmentFor(long index)
    {
        int lo = 0, hi = segments.Count - 1;
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
            throw new InvalidDataException(segment.Path + ": record " + (segment.LastIndex + 1).ToString(CultureInfo.InvariantCulture) + " at offset " + stop.ToString(CultureInfo.InvariantCulture) + " is damaged (" + Describe(error) + "); the segment should hold records up to " + expectedLast.ToString(CultureInfo.InvariantCulture));
        }

        if (stop < segment.Size && segment.From(stop).ContainsAnyExcept((byte)0))
        {
            throw new InvalidDataException(segment.Path + ": unexpected bytes after the last record at offset " + stop.ToString(CultureInfo.InvariantCulture));
        }

        segment.End = stop;
        segment.Indexed = true;
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

        Native.SyncDirectory(directory);
    }

    private bool DeleteCompactedSegments()
    {
        var compacted = Meta.CompactedIndex;
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
            if (!Native.Allocate(file, options.SegmentSize))
            {
                RandomAccess.SetLength(file, options.SegmentSize); // no fallocate here: a sparse file still reads as zeros
            }

            Span<byte> header = stackalloc byte[SegmentHeader.Size];
            new SegmentHeader(options.ClusterId, options.NodeId, firstIndex).Write(header);
            RandomAccess.Write(file, header, 0);
            if (!Native.Fsync(file))
            {
                throw new IOException("fsync of new segment " + temporary + " failed: errno " + Native.LastError);
            }

            File.Move(temporary, path);
            renamed = true;
            Native.SyncDirectory(directory);
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

    private void WritePending()
    {
        if (pending == 0)
        {
            return;
        }

        var tail = segments[^1];
        try
        {
            RandomAccess.Write(tail.File, new ReadOnlySpan<byte>(buffer, pending), pendingOffset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail("write to " + tail.Name + " failed: " + e.Message);
        }

        options.IoObserver?.Written(tail.Path, pendingOffset, pending);
        pendingOffset += pending;
        pending = 0;
    }

    private void WriteLarge(Segment tail, long offset, long term, long index, LogRecordType type, ReadOnlySpan<byte> payload, int size)
    {
        WritePending();
        Span<byte> header = stackalloc byte[LogRecord.HeaderSize];
        LogRecord.WriteHeader(header, term, index, type, payload, durableIndex);
        Span<byte> padding = stackalloc byte[LogRecord.Alignment];
        padding.Clear();
        try
        {
            RandomAccess.Write(tail.File, header, offset);
            RandomAccess.Write(tail.File, payload, offset + LogRecord.HeaderSize);
            RandomAccess.Write(tail.File, padding[..(size - LogRecord.HeaderSize - payload.Length)], offset + LogRecord.HeaderSize + payload.Length);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail("write to " + tail.Name + " failed: " + e.Message);
        }

        options.IoObserver?.Written(tail.Path, offset, size);
        pendingOffset = offset + size;
    }

    /// <summary>Makes [offset, offset+length) of a segment read as zeros: a punched hole, or written zeros where holes are not supported.</summary>
    private void Erase(Segment segment, long offset, long length)
    {
        if (length <= 0)
        {
            return;
        }

        if (!Native.PunchHole(segment.File, offset, length))
        {
            // Back to front: a crash half way leaves the removed records' tail zeroed and their head intact, never
            // zeros followed by old records that claim the zeroed ones were durable.
            var zeros = new byte[64 * 1024];
            for (var end = offset + length; end > offset;)
            {
                var chunk = (int)Math.Min(zeros.Length, end - offset);
                end -= chunk;
                RandomAccess.Write(segment.File, zeros.AsSpan(0, chunk), end);
            }
        }

        options.IoObserver?.Written(segment.Path, offset, length);
    }

    private void Sync(Segment segment, bool dataOnly)
    {
        if (options.IoObserver?.AllowSync(segment.Path) == false)
        {
            throw Fail((dataOnly ? "fdatasync" : "fsync") + " of " + segment.Name + " failed: injected by a test");
        }

        if (!(dataOnly ? Native.Fdatasync(segment.File) : Native.Fsync(segment.File)))
        {
            throw Fail((dataOnly ? "fdatasync" : "fsync") + " of " + segment.Name + " failed: errno " + Native.LastError);
        }

        options.IoObserver?.Synced(segment.Path);
    }

    private IOException Fail(string reason)
    {
        Volatile.Write(ref failure, reason + " (the kernel may have dropped the unsynced pages; the log refuses writes from now on)");
        return new IOException(failure);
    }

    private void ThrowIfUnwritable()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (failure is not null)
        {
            throw new IOException("the log refuses writes: " + failure);
        }
    }

    private void RunFlusher()
    {
        while (true)
        {
            TaskCompletionSource? batch;
            lock (state)
            {
                batch = nextFlush;
                nextFlush = null;
                if (batch is null)
                {
                    flusherRunning = false;
                    return;
                }
            }

            try
            {
                Flush();
                batch.SetResult();
            }
            catch (Exception e)
            {
                // Whatever went wrong, the waiters hear it and the flusher stays alive for the next batch.
                batch.SetException(e);
            }
        }
    }

    private void Close()
    {
        lock (syncGate)
        {
            lock (state)
            {
                if (disposed)
                {
                    return;
                }

                disposed = true;
                foreach (var segment in segments)
                {
                    segment.Release();
                }

                segments.Clear();
                metadata.Dispose();
                NativeMemory.AlignedFree(buffer);
                nextFlush?.TrySetException(new ObjectDisposedException(nameof(SegmentedLog)));
                nextFlush = null;
            }
        }
    }
}
