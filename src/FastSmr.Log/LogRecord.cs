using System.Buffers.Binary;

namespace FastSmr.Log;

/// <summary>What a log record holds.</summary>
public enum LogRecordType : byte
{
    /// <summary>An entry: the payload is the batch bytes exactly as they were appended.</summary>
    Entry = 1,
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
/// zeroed and the payload, term (i64), index (i64), type (u8), 7 reserved zero bytes — then the payload, padded with
/// zeros to a multiple of 8 bytes. All integers little-endian.
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
    public static int Write(Span<byte> destination, long term, long index, LogRecordType type, ReadOnlySpan<byte> payload)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(payload.Length, PayloadMax);
        ArgumentOutOfRangeException.ThrowIfNegative(term);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var size = Size(payload.Length);
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, size);
        var header = destination[..HeaderSize];
        BinaryPrimitives.WriteUInt32LittleEndian(header, (uint)payload.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(header[8..], term);
        BinaryPrimitives.WriteInt64LittleEndian(header[16..], index);
        header[24] = (byte)type;
        header[25..HeaderSize].Clear();
        payload.CopyTo(destination[HeaderSize..]);
        destination[(HeaderSize + payload.Length)..size].Clear();
        var crc = Crc32C.Append(Crc32C.Compute(header), payload);
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], crc);
        return size;
    }

    /// <summary>Reads the record at the start of <paramref name="source"/>; on success, the payload is a slice of it.</summary>
    public static LogRecordError TryRead(ReadOnlySpan<byte> source, out long term, out long index, out LogRecordType type, out ReadOnlySpan<byte> payload, out int size)
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
        if (length > PayloadMax || type != LogRecordType.Entry || source[25..HeaderSize].ContainsAnyExcept((byte)0) || term < 0 || index < 0)
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
