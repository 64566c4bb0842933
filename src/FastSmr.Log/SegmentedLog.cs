using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

/// <summary>
/// A crash-safe log of records in fixed-size, preallocated segment files named by their first index.
/// <list type="bullet">
/// <item>Appends are copied into a write buffer and handed to the kernel with one <c>pwrite</c>; <see cref="Flush(LogIndex)"/>
/// and <see cref="FlushAsync"/> make them durable with one <c>fdatasync</c>, and concurrent flushes share it (group
/// commit). A failed sync is fatal: the log refuses every later write and says why.</item>
/// <item>Reads are zero-copy spans over a read-only mapping of the segment, valid while the <see cref="LogReader"/> that
/// returned them is on that segment (it holds a reference on the segment, so compaction cannot unmap it underneath).</item>
/// <item>Only the last segment can hold unsynced records (a roll-over syncs the old segment first), so recovery checks
/// the last segment at open and indexes the others lazily on first use, checking every CRC as it goes.</item>
/// </list>
/// Thread safety: every member may be called from any thread; appends, truncation and compaction are serialized.
/// </summary>
public sealed unsafe partial class SegmentedLog : IDisposable
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
    private int pending; // bytes in the buffer, all belonging to the tail segment
    private long pendingOffset; // where buffer[0] goes in the tail segment
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
    public LogIndex FirstIndex
    {
        get
        {
            lock (state)
            {
                return new LogIndex(MetaCompacted + 1);
            }
        }
    }

    private LogMetadataState Meta => metadata.State;

    // The metadata's typed fields as the raw values the log computes with inside.
    private long MetaCompacted => Meta.CompactedIndex.Value;

    private long MetaCompactedTerm => Meta.CompactedTerm.Value;

    private long MetaCommit => Meta.CommitIndex.Value;

    private long First => MetaCompacted + 1;

    /// <summary>The index of the last appended record (<see cref="FirstIndex"/> - 1 when empty).</summary>
    public LogIndex LastIndex
    {
        get
        {
            lock (state)
            {
                return new LogIndex(lastIndex);
            }
        }
    }

    /// <summary>The term of the last record (the compacted term when the log holds none).</summary>
    public Term LastTerm
    {
        get
        {
            lock (state)
            {
                return new Term(lastTerm);
            }
        }
    }

    /// <summary>Every record up to this index survives a crash.</summary>
    public LogIndex DurableIndex => new(Volatile.Read(ref durableIndex));

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
            Syscalls.SyncDirectory(Path.GetDirectoryName(directory)!); // the log's own name must survive a crash too
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
    public LogIndex Append(Term term, ReadOnlySpan<byte> payload) => Append(term, payload, LogRecordType.Entry);

    /// <summary>
    /// Appends a record of <paramref name="type"/> with the next index and returns that index. Not durable until a
    /// flush covers it.
    /// </summary>
    public LogIndex Append(Term term, ReadOnlySpan<byte> payload, LogRecordType type)
    {
        var appendTerm = term.Value;
        var size = CheckedRecordSize(type, payload);
        lock (state)
        {
            ThrowIfUnwritable();
            if (appendTerm < lastTerm)
            {
                ThrowTermGoesDown(appendTerm);
            }

            var tail = TailWithRoomFor(size, payload);
            var index = lastIndex + 1;
            var offset = tail.End;
            if (size > bufferSize - pending)
            {
                WritePending();
            }

            if (size <= bufferSize)
            {
                LogRecord.Write(new Span<byte>(buffer + pending, size), appendTerm, index, type, payload, durableIndex);
                pending += size;
            }
            else
            {
                WriteLarge(tail, offset, appendTerm, index, type, payload, size);
            }

            tail.Add(offset);
            tail.End = offset + size;
            lastIndex = index;
            lastTerm = appendTerm;
            return new LogIndex(index);
        }
    }

    /// <summary>The size of a record of <paramref name="type"/> holding <paramref name="payload"/>; throws when it cannot be one.</summary>
    private int CheckedRecordSize(LogRecordType type, ReadOnlySpan<byte> payload)
    {
        if (type is < LogRecordType.Entry or > LogRecordType.Config)
        {
            throw new ArgumentOutOfRangeException(nameof(type), type, "not a record type");
        }

        var size = LogRecord.Size(payload.Length);
        if (size > options.SegmentSize - SegmentHeader.Size || payload.Length > LogRecord.PayloadMax)
        {
            throw new ArgumentOutOfRangeException(
                nameof(payload),
                payload.Length,
                "a record must fit in one segment ("
                    + options.SegmentSize.ToString(CultureInfo.InvariantCulture)
                    + " bytes with its header) and be at most "
                    + LogRecord.PayloadMax.ToString(CultureInfo.InvariantCulture)
                    + " bytes"
            );
        }

        return size;
    }

    /// <summary>The tail segment, rolled over first when the record does not fit (under <c>state</c>).</summary>
    private Segment TailWithRoomFor(int size, ReadOnlySpan<byte> payload)
    {
        var tail = segments[^1];
        if (tail.End + size <= tail.Size)
        {
            return tail;
        }

        if (tail.Count == 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(payload),
                payload.Length,
                "the record does not fit in the current segment ("
                    + tail.Size.ToString(CultureInfo.InvariantCulture)
                    + " bytes, created with another segment size)"
            );
        }

        RollOver();
        return segments[^1];
    }

    [DoesNotReturn]
    private void ThrowTermGoesDown(long term) =>
        throw new ArgumentOutOfRangeException(
            nameof(term),
            term,
            "terms never go down in the log (the last record has term " + lastTerm.ToString(CultureInfo.InvariantCulture) + ")"
        );

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
    /// Records [<paramref name="fromIndex"/>, <paramref name="toIndex"/>] to read with <c>foreach</c> (zero-copy, no
    /// allocation).
    /// </summary>
    public LogRange Read(LogIndex fromIndex, LogIndex toIndex)
    {
        var from = fromIndex.Value;
        var to = toIndex.Value;
        lock (state)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (from < First || to > lastIndex || from > to + 1)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(fromIndex),
                    "cannot read ["
                        + from.ToString(CultureInfo.InvariantCulture)
                        + ", "
                        + to.ToString(CultureInfo.InvariantCulture)
                        + "]: the log holds ["
                        + First.ToString(CultureInfo.InvariantCulture)
                        + ", "
                        + lastIndex.ToString(CultureInfo.InvariantCulture)
                        + "]"
                );
            }
        }

        return new LogRange(this, from, to);
    }

    /// <summary>The term of record <paramref name="index"/>; the compacted term for the last compacted index.</summary>
    public Term TermAt(LogIndex index)
    {
        var at = index.Value;
        lock (state)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (at == MetaCompacted)
            {
                return new Term(MetaCompactedTerm);
            }

            if (at < First || at > lastIndex)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(index),
                    at,
                    "the log holds ["
                        + First.ToString(CultureInfo.InvariantCulture)
                        + ", "
                        + lastIndex.ToString(CultureInfo.InvariantCulture)
                        + "]"
                );
            }

            return new Term(SegmentFor(at).TermOf(at));
        }
    }

    /// <summary>Durably records term, vote and commit index (atomic: after a crash, either all old or all new).</summary>
    public void SaveState(Term term, ReplicaId votedFor, LogIndex commitIndex)
    {
        lock (state)
        {
            ThrowIfUnwritable();
            var current = Meta;
            if (term < current.Term || commitIndex < current.CommitIndex)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(term),
                    "term and commit index never go down (now term "
                        + current.Term.ToString()
                        + ", commit "
                        + current.CommitIndex.ToString()
                        + ")"
                );
            }

            if (commitIndex.Value > durableIndex)
            {
                throw new ArgumentOutOfRangeException(
                    nameof(commitIndex),
                    commitIndex,
                    "the commit index cannot pass the durable index " + durableIndex.ToString(CultureInfo.InvariantCulture)
                );
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
