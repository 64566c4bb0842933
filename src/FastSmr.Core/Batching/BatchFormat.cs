using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;

namespace FastSmr.Core.Batching;

/// <summary>
/// The layout of a log entry. A batch is one contiguous byte range that travels from the leader's batcher into
/// the log and to followers as is, and is parsed in place on apply.
/// </summary>
/// <remarks>
/// <code>
/// header (32 bytes, little-endian)
///   0  u16 magic 0x5346 ("FS")     2  u8 format version     3  u8 entry type
///   4  u32 command count           8  u64 batch id (unique per proposer)
///  16  i64 leader timestamp (µs since the Unix epoch; never goes backwards)
///  24  u32 proposer replica id    28  u32 reserved, zero
/// then per command a record (the same bytes as the client's Submit frame body):
///   0  u32 command length          4  u32 command flags
///   8  u64 client id              16  u64 client sequence number
///  24  command bytes
/// </code>
/// The client id and sequence number are reserved from the first version for exactly-once client sessions.
/// </remarks>
public static class BatchFormat
{
    /// <summary>The magic number at offset 0.</summary>
    public const ushort Magic = 0x5346;

    /// <summary>The current format version.</summary>
    public const byte Version = 1;

    /// <summary>The size of the batch header in bytes.</summary>
    public const int HeaderSize = 32;

    /// <summary>The size of a command record's header in bytes.</summary>
    public const int RecordHeaderSize = 24;

    /// <summary>The largest command accepted anywhere (16 MiB); the server's configured limit is usually far lower.</summary>
    public const int CommandSizeMax = 16 << 20;

    /// <summary>Writes a batch header.</summary>
    public static void WriteHeader(Span<byte> destination, in BatchHeader header)
    {
        if (destination.Length < HeaderSize)
        {
            ThrowTooShort();
        }

        BinaryPrimitives.WriteUInt16LittleEndian(destination, Magic);
        destination[2] = header.Version;
        destination[3] = (byte)header.EntryType;
        BinaryPrimitives.WriteInt32LittleEndian(destination[4..], header.CommandCount);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], header.BatchId);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], header.LeaderTimestampMicros);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[24..], header.ProposerId.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[28..], 0);
    }

    /// <summary>Parses and validates a batch header, and checks that the records fill the entry exactly.</summary>
    /// <param name="entry">The whole entry.</param>
    /// <param name="header">The parsed header.</param>
    /// <param name="error">Why the entry is malformed, when the method returns false.</param>
    /// <returns>True for a well-formed entry.</returns>
    public static bool TryParse(ReadOnlySpan<byte> entry, out BatchHeader header, [NotNullWhen(false)] out string? error)
    {
        header = default;
        if (entry.Length < HeaderSize)
        {
            error = "entry shorter than the batch header";
            return false;
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(entry) != Magic)
        {
            error = "bad batch magic";
            return false;
        }

        var version = entry[2];
        if (version != Version)
        {
            error = "unsupported batch format version " + version.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return false;
        }

        var type = (EntryType)entry[3];
        if (type is < EntryType.Commands or > EntryType.Checkpoint)
        {
            error = "unknown entry type";
            return false;
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(entry[4..]);
        if (count < 0 || (type != EntryType.Commands && count != 0))
        {
            error = "bad command count";
            return false;
        }

        header = new BatchHeader(
            type,
            count,
            BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]),
            BinaryPrimitives.ReadInt64LittleEndian(entry[16..]),
            new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(entry[24..])),
            version
        );

        // Walk the records once so that apply can trust the lengths.
        var body = entry[HeaderSize..];
        for (var i = 0; i < count; i++)
        {
            if (!TryReadRecord(body, out _, out var consumed, out error))
            {
                return false;
            }

            body = body[consumed..];
        }

        if (!body.IsEmpty)
        {
            error = "trailing bytes after the last command";
            return false;
        }

        error = null;
        return true;
    }

    /// <summary>Parses one command record at the start of <paramref name="source"/>.</summary>
    /// <param name="source">Bytes starting at a record.</param>
    /// <param name="record">The parsed record; its command span points into <paramref name="source"/>.</param>
    /// <param name="consumed">The record's total size.</param>
    /// <param name="error">Why the record is malformed.</param>
    /// <returns>True when a whole, well-formed record is present.</returns>
    public static bool TryReadRecord(
        ReadOnlySpan<byte> source,
        out CommandRecord record,
        out int consumed,
        [NotNullWhen(false)] out string? error
    )
    {
        record = default;
        consumed = 0;
        if (source.Length < RecordHeaderSize)
        {
            error = "truncated command record header";
            return false;
        }

        var length = BinaryPrimitives.ReadInt32LittleEndian(source);
        if (length < 0 || length > CommandSizeMax)
        {
            error = "command length out of range";
            return false;
        }

        if (source.Length - RecordHeaderSize < length)
        {
            error = "truncated command";
            return false;
        }

        record = new CommandRecord(
            (CommandOptions)BinaryPrimitives.ReadUInt32LittleEndian(source[4..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[16..]),
            source.Slice(RecordHeaderSize, length)
        );
        consumed = RecordHeaderSize + length;
        error = null;
        return true;
    }

    /// <summary>Writes a command record header; the command bytes follow it.</summary>
    public static void WriteRecordHeader(Span<byte> destination, int commandLength, CommandOptions flags, ulong clientId, ulong sequence)
    {
        if (destination.Length < RecordHeaderSize)
        {
            ThrowTooShort();
        }

        ArgumentOutOfRangeException.ThrowIfNegative(commandLength);
        BinaryPrimitives.WriteInt32LittleEndian(destination, commandLength);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], (uint)flags);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], clientId);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], sequence);
    }

    /// <summary>Writes a whole entry with no commands (a no-op).</summary>
    public static int WriteNoOp(Span<byte> destination, ulong batchId, long leaderTimestampMicros, ReplicaId proposerId)
    {
        WriteHeader(destination, new BatchHeader(EntryType.NoOp, 0, batchId, leaderTimestampMicros, proposerId));
        return HeaderSize;
    }

    /// <summary>Enumerates the command records of a batch already validated by <see cref="TryParse"/>.</summary>
    public static CommandRecordEnumerator EnumerateRecords(ReadOnlySpan<byte> entry) => new(entry[HeaderSize..]);

    [DoesNotReturn]
    private static void ThrowTooShort() => throw new ArgumentException("destination is too short");
}
