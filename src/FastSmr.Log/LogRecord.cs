using System.Buffers.Binary;

namespace FastSmr.Log;

/// <summary>What a log record holds.</summary>
public enum LogRecordType : byte
{
    /// <summary>An entry: the payload is the batch bytes exactly as they were appended.</summary>
    Entry = 1,

    /// <summary>A consensus no-op (a new leader's first entry): the payload is empty.</summary>
    NoOp = 2,

    /// <summary>A membership change: the payload is the encoded configuration.</summary>
    Config = 3,
}

/// <summary>Why a record could not be read.</summary>
public enum LogRecordError
{
    /// <summary>The record is intact.</summary>
    None,

    /// <summary>Nothing was written here: an all-zero header, the preallocated unwritten part of a segment.</summary>
    Empty,

    /// <summary>Fewer bytes remain than the header or the length it declares (a torn tail, or the unwritten end).</summary>
    Truncated,

    /// <summary>The header is impossible (zero type, non-zero reserved bytes, a length beyond the limit).</summary>
    BadHeader,

    /// <summary>The CRC over header and payload does not match.</summary>
    BadChecksum,
}

/// <summary>
/// The on-disk record: a 32-byte header — payload length (u32), CRC-32C (u32) over the header with the CRC field
/// zeroed and the payload, term (i64), index (i64), type (u8), 3 reserved zero bytes, sync lag (u32) — then the
/// payload, padded with zeros to a multiple of 8 bytes. All integers little-endian. The sync lag is the record's index
/// minus the highest index known durable when the record was written (<see cref="uint.MaxValue"/>: nothing known);
/// recovery uses it to tell a torn tail (nothing later claims the damaged record was durable) from corruption.
/// </summary>
public static class LogRecord
{
    /// <summary>Bytes of the record header.</summary>
    public const int HeaderSize = 32;

    /// <summary>Records start at multiples of this.</summary>
    public const int Alignment = 8;

    /// <summary>The largest payload a record may declare (a header claiming more is rejected, never allocated).</summary>
    public const int PayloadMax = 64 << 20;

    /// <summary>The bytes a record with <paramref name="payloadLength"/> bytes of payload occupies, padding included.</summary>
    public static int Size(int payloadLength) => HeaderSize + ((payloadLength + Alignment - 1) & ~(Alignment - 1));

    /// <summary>Writes a record into <paramref name="destination"/> and returns its size.</summary>
    public static int Write(
        Span<byte> destination,
        long term,
        long index,
        LogRecordType type,
        ReadOnlySpan<byte> payload,
        long durableIndex = -1
    )
    {
        var size = Size(payload.Length);
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, size);
        payload.CopyTo(destination[HeaderSize..]);
        destination[(HeaderSize + payload.Length)..size].Clear();
        WriteHeader(destination[..HeaderSize], term, index, type, payload, durableIndex);
        return size;
    }

    /// <summary>
    /// Writes only the header of a record (its CRC covers <paramref name="payload"/>, which the caller writes after it,
    /// padded to <see cref="Size"/>); for payloads too large to copy into a buffer first.
    /// </summary>
    public static void WriteHeader(
        Span<byte> header,
        long term,
        long index,
        LogRecordType type,
        ReadOnlySpan<byte> payload,
        long durableIndex = -1
    )
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payload.Length, PayloadMax);
        ArgumentOutOfRangeException.ThrowIfNegative(term);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfLessThan(header.Length, HeaderSize);
        header = header[..HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], term);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], index);
        header[24] = (byte)type;
        header[25..28].Clear();
        var lag = durableIndex < 0 || index - durableIndex >= uint.MaxValue ? uint.MaxValue : (uint)Math.Max(0, index - durableIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(header[28..], lag);
        var crc = Crc32C.Append(Crc32C.Compute(header), payload);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], crc);
    }

    /// <summary>
    /// The highest index that was durable when the (intact) record starting at <paramref name="record"/> was written,
    /// or -1 when the writer did not know.
    /// </summary>
    public static long DurableWhenWritten(ReadOnlySpan<byte> record)
    {
        var lag = BinaryPrimitives.ReadUInt32LittleEndian(record[28..]);
        return lag == uint.MaxValue ? -1 : BinaryPrimitives.ReadInt64LittleEndian(record[16..]) - lag;
    }

    /// <summary>Reads the record at the start of <paramref name="source"/>; on success, the payload is a slice of it.</summary>
    public static LogRecordError TryRead(
        ReadOnlySpan<byte> source,
        out long term,
        out long index,
        out LogRecordType type,
        out ReadOnlySpan<byte> payload,
        out int size
    )
    {
        term = index = 0;
        type = default;
        payload = default;
        size = 0;
        if (source.Length < HeaderSize)
        {
            return LogRecordError.Truncated;
        }

        if (!source[..HeaderSize].ContainsAnyExcept((byte)0))
        {
            return LogRecordError.Empty;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(source);
        var storedCrc = BinaryPrimitives.ReadUInt32LittleEndian(source[4..]);
        term = BinaryPrimitives.ReadInt64LittleEndian(source[8..]);
        index = BinaryPrimitives.ReadInt64LittleEndian(source[16..]);
        type = (LogRecordType)source[24];
        if (
            length > PayloadMax
            || type is < LogRecordType.Entry or > LogRecordType.Config
            || source[25..28].ContainsAnyExcept((byte)0)
            || term < 0
            || index < 0
        )
        {
            return LogRecordError.BadHeader;
        }

        var recordSize = Size((int)length);
        if (source.Length < recordSize)
        {
            return LogRecordError.Truncated;
        }

        Span<byte> header = stackalloc byte[HeaderSize];
        source[..HeaderSize].CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], 0);
        var body = source.Slice(HeaderSize, (int)length);
        if (Crc32C.Append(Crc32C.Compute(header), body) != storedCrc)
        {
            return LogRecordError.BadChecksum;
        }

        payload = body;
        size = recordSize;
        return LogRecordError.None;
    }
}
