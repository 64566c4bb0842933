using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

/// <summary>
/// One segment file: its descriptor, a read-only shared mapping of the whole file, and the offsets of its records
/// (native memory, so appending never allocates on the GC heap; untouched pages of it cost nothing). Reference-counted:
/// the log holds one reference while the segment is live, each reader one while it reads from it; the mapping and the
/// descriptor go away with the last reference, so a reader never touches an unmapped page.
/// </summary>
internal sealed unsafe class Segment
{
    private readonly uint* offsets;
    private readonly int capacity;
    private int references = 1;

    public Segment(string path, SafeFileHandle file, long size, long firstIndex)
    {
        Path = path;
        File = file;
        Size = size;
        FirstIndex = firstIndex;
        capacity = (int)((size - SegmentHeader.Size) / LogRecord.HeaderSize) + 1;
        Map = Syscalls.MapReadOnly(file, size, path);
        offsets = (uint*)NativeMemory.Alloc((nuint)capacity, sizeof(uint));
        End = SegmentHeader.Size;
    }

    public string Path { get; }

    public SafeFileHandle File { get; }

    public long Size { get; }

    public long FirstIndex { get; }

    public byte* Map { get; }

    /// <summary>Records indexed so far (all of them once <see cref="Indexed"/>).</summary>
    public int Count { get; private set; }

    /// <summary>Byte offset just past the last record (written or still in the write buffer).</summary>
    public long End { get; set; }

    /// <summary>Whether <see cref="Count"/> and the offsets cover every record (sealed segments are indexed lazily).</summary>
    public bool Indexed { get; set; }

    public long LastIndex => FirstIndex + Count - 1;

    public string Name => System.IO.Path.GetFileName(Path);

    public static string FileName(long firstIndex) => firstIndex.ToString("D20", CultureInfo.InvariantCulture) + ".seg";

    public long OffsetOf(long index) => offsets[index - FirstIndex];

    public void Add(long offset) => offsets[Count++] = (uint)offset;

    /// <summary>Forgets records from <paramref name="index"/> on (truncation).</summary>
    public void CutAt(long index) => Count = (int)(index - FirstIndex);

    public ReadOnlySpan<byte> Bytes(long offset, long length) => new(Map + offset, checked((int)length));

    public ReadOnlySpan<byte> From(long offset) => Bytes(offset, Size - offset);

    /// <summary>Takes a reader's reference; false once the segment is gone.</summary>
    public bool TryAcquire()
    {
        while (true)
        {
            var current = Volatile.Read(ref references);
            if (current == 0)
            {
                return false;
            }

            if (Interlocked.CompareExchange(ref references, current + 1, current) == current)
            {
                return true;
            }
        }
    }

    /// <summary>Drops a reference; the last one unmaps the file, closes it and frees the offsets.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref references) == 0)
        {
            Syscalls.Unmap(Map, Size);
            File.Dispose();
            NativeMemory.Free(offsets);
        }
    }

    /// <summary>
    /// Indexes records from byte <paramref name="offset"/> (expecting index <c>FirstIndex + Count</c>) while each one is
    /// intact, has the next index and a term not below <paramref name="term"/>. Returns where it stopped and why
    /// (<see cref="LogRecordError.None"/> there means an intact record that breaks the chain).
    /// </summary>
    public (long Offset, LogRecordError Error, long Term) Scan(long offset, long term)
    {
        var expected = FirstIndex + Count;
        while (offset + LogRecord.HeaderSize <= Size && Count < capacity)
        {
            var error = LogRecord.TryRead(From(offset), out var recordTerm, out var index, out _, out _, out var size);
            if (error != LogRecordError.None || index != expected || recordTerm < term)
            {
                return (offset, error, term);
            }

            Add(offset);
            offset += size;
            expected++;
            term = recordTerm;
        }

        return (offset, offset + LogRecord.HeaderSize <= Size ? LogRecordError.None : LogRecordError.Empty, term);
    }

    /// <summary>
    /// Looks past <paramref name="offset"/> for an intact record at or beyond <paramref name="missingIndex"/> whose writer
    /// knew <paramref name="missingIndex"/> was durable: proof that the damage at <paramref name="offset"/> hit synced
    /// data (corruption) rather than a write that never finished (a torn tail). Returns its offset or -1.
    /// </summary>
    public long FindDurabilityClaim(long offset, long missingIndex)
    {
        while (offset + LogRecord.HeaderSize <= Size)
        {
            var nonZero = From(offset).IndexOfAnyExcept((byte)0);
            if (nonZero < 0)
            {
                return -1;
            }

            var candidate = offset + (nonZero & ~(LogRecord.Alignment - 1));
            var error = LogRecord.TryRead(From(candidate), out _, out var index, out _, out _, out var size);
            if (error == LogRecordError.None && index >= missingIndex && LogRecord.DurableWhenWritten(From(candidate)) >= missingIndex)
            {
                return candidate;
            }

            offset = error == LogRecordError.None ? candidate + size : candidate + LogRecord.Alignment;
        }

        return -1;
    }

    /// <summary>The term stored in the header of record <paramref name="index"/> (which must be indexed).</summary>
    public long TermOf(long index) => System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(Bytes(OffsetOf(index) + 8, 8));
}
