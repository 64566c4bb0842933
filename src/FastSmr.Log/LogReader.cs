using System.Buffers.Binary;
using System.Globalization;

namespace FastSmr.Log;

/// <summary>One record as read: its payload is a span over the segment's mapping, valid inside the loop that read it.</summary>
public readonly ref struct LogEntry
{
    internal LogEntry(long index, long term, LogRecordType type, ReadOnlySpan<byte> payload)
    {
        Index = new LogIndex(index);
        Term = new Term(term);
        Type = type;
        Payload = payload;
    }

    /// <summary>The record's index.</summary>
    public LogIndex Index { get; }

    /// <summary>The term it was appended in.</summary>
    public Term Term { get; }

    /// <summary>What the record holds.</summary>
    public LogRecordType Type { get; }

    /// <summary>The payload exactly as appended (zero-copy: memory of the mapped segment).</summary>
    public ReadOnlySpan<byte> Payload { get; }
}

/// <summary>
/// A range of records to read with <c>foreach</c>. The enumerator holds a reference on the segment it reads, so the
/// mapping under each <see cref="LogEntry.Payload"/> stays valid until the loop moves to another segment or ends, even
/// if compaction deletes the file meanwhile. A truncation of the records being read (only ever of uncommitted ones)
/// makes them read as zeros or fail; read committed records when that matters.
/// </summary>
public readonly struct LogRange
{
    private readonly SegmentedLog log;

    internal LogRange(SegmentedLog log, long first, long last)
    {
        this.log = log;
        First = new LogIndex(first);
        Last = new LogIndex(last);
    }

    /// <summary>First index of the range.</summary>
    public LogIndex First { get; }

    /// <summary>Last index of the range (First - 1 when empty).</summary>
    public LogIndex Last { get; }

    /// <summary>Starts reading; <c>foreach</c> disposes the reader, which releases its segment.</summary>
    public LogReader GetEnumerator() => new(log, First.Value, Last.Value);
}

/// <summary>Enumerates a <see cref="LogRange"/> without allocating; dispose it (foreach does) to release its segment.</summary>
public ref struct LogReader
{
    private readonly SegmentedLog log;
    private readonly long last;
    private long next;
    private Segment? segment;
    private LogEntry current;

    internal LogReader(SegmentedLog log, long first, long last)
    {
        this.log = log;
        this.last = last;
        next = first;
    }

    /// <summary>The record the last <see cref="MoveNext"/> reached.</summary>
    public readonly LogEntry Current => current;

    /// <summary>Moves to the next record of the range.</summary>
    public bool MoveNext()
    {
        if (next > last)
        {
            return false;
        }

        if (segment is null || next > segment.LastIndex)
        {
            segment?.Release();
            segment = null;
            segment = log.AcquireFor(next, last);
        }

        var offset = segment.OffsetOf(next);
        var header = segment.Bytes(offset, LogRecord.HeaderSize);
        var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        var term = BinaryPrimitives.ReadInt64LittleEndian(header[8..]);
        var index = BinaryPrimitives.ReadInt64LittleEndian(header[16..]);
        if (index != next || length > LogRecord.PayloadMax || offset + LogRecord.Size((int)length) > segment.End)
        {
            throw new InvalidDataException(
                segment.Path
                    + ": the record at offset "
                    + offset.ToString(CultureInfo.InvariantCulture)
                    + " is not record "
                    + next.ToString(CultureInfo.InvariantCulture)
                    + " (truncated while being read?)"
            );
        }

        current = new LogEntry(index, term, (LogRecordType)header[24], segment.Bytes(offset + LogRecord.HeaderSize, length));
        next++;
        return true;
    }

    /// <summary>Releases the segment being read.</summary>
    public void Dispose()
    {
        segment?.Release();
        segment = null;
        current = default;
    }
}
