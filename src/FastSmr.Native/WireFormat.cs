using System.Buffers;
using System.Buffers.Binary;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>
/// The peer protocol. A connection opens with a hello (<see cref="HelloSize"/> bytes: magic "FSRP", version u16, kind u8,
/// flags u8 (1: the sender has no state yet — term 0, empty log; other bits must be 0), cluster id u64, sender id
/// i32); then, on a message connection, frames follow: a u32 body length, then the body — type u8, flags u8
/// (1 reject, 2 transfer, 4 has config, 8 differs: the rejected entry has the leader's term, not its bytes), from i32,
/// to i32, term, log term, index, commit, reject hint, round (i64 each), the previous entry's hash u64, entry count
/// u32, the configuration when flagged (u16 length, bytes), then per entry term i64, type u8, length u32 and its
/// bytes. Entries are consecutive from index + 1. Little-endian throughout.
/// </summary>
/// <remarks>
/// Entry bytes go from the core's entries (the leader's own copies of the batches) straight into the connection's send buffer:
/// one copy, no re-serialisation. A receiver refuses — by closing the connection — any frame whose declared sizes do not
/// add up, exceed <see cref="FrameBytesMax"/>, or carry an unknown type; nothing is allocated before the sizes are checked.
/// </remarks>
internal static class WireFormat
{
    public const uint Magic = 0x50525346; // "FSRP"
    public const ushort Version = 2; // 2: Append carries the hash of the previous entry (decision 89)
    public const int HelloSize = 20;
    public const int FrameHeaderSize = 4;
    public const int FixedBodySize = 2 + 4 + 4 + (6 * 8) + 8 + 4;
    public const int EntryHeaderSize = 8 + 1 + 4;

    /// <summary>The largest frame accepted: a 64 MiB log record plus headroom (the core sends one oversized entry alone).</summary>
    public const int FrameBytesMax = (64 << 20) + (1 << 20);

    public const byte KindMessages = 1;
    public const byte KindSnapshot = 2;

    /// <summary>Hello flag: the sender has no state yet (term 0, nothing in its log).</summary>
    public const byte HelloFresh = 1;

    private const byte FlagReject = 1;
    private const byte FlagTransfer = 2;
    private const byte FlagConfig = 4;
    private const byte FlagDiffers = 8;

    public static void WriteHello(Span<byte> destination, byte kind, ulong clusterId, int from, byte flags = 0)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], Version);
        destination[6] = kind;
        destination[7] = flags;
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], clusterId);
        BinaryPrimitives.WriteInt32LittleEndian(destination[16..], from);
    }

    /// <summary>Checks a hello; returns null when acceptable, else why not.</summary>
    public static string? ReadHello(ReadOnlySpan<byte> source, ulong clusterId, out byte kind, out int from) =>
        ReadHello(source, clusterId, out kind, out from, out _);

    /// <summary>Checks a hello and returns its flags too; null when acceptable, else why not.</summary>
    public static string? ReadHello(ReadOnlySpan<byte> source, ulong clusterId, out byte kind, out int from, out byte flags)
    {
        kind = 0;
        from = 0;
        flags = 0;
        if (BinaryPrimitives.ReadUInt32LittleEndian(source) != Magic)
        {
            return "not a FastSmr peer (bad magic)";
        }

        if (BinaryPrimitives.ReadUInt16LittleEndian(source[4..]) != Version)
        {
            return "unsupported peer protocol version " + BinaryPrimitives.ReadUInt16LittleEndian(source[4..]);
        }

        kind = source[6];
        flags = source[7];
        if (kind is not (KindMessages or KindSnapshot) || (flags & ~HelloFresh) != 0)
        {
            return "unknown connection kind " + kind + " or flags " + flags;
        }

        if (BinaryPrimitives.ReadUInt64LittleEndian(source[8..]) != clusterId)
        {
            return "peer belongs to another cluster (" + BinaryPrimitives.ReadUInt64LittleEndian(source[8..]) + ")";
        }

        from = BinaryPrimitives.ReadInt32LittleEndian(source[16..]);
        return from > 0 ? null : "bad sender id " + from;
    }

    /// <summary>The encoded size of <paramref name="message"/>'s frame, header included.</summary>
    public static long FrameSize(Message message, byte[]? config)
    {
        long size = FrameHeaderSize + FixedBodySize + (config is null ? 0 : 2 + config.Length);
        var entries = message.Entries;
        for (var i = 0; i < entries.Count; i++)
        {
            size += EntryHeaderSize + entries[i].Data.Length;
        }

        return size;
    }

    /// <summary>Writes <paramref name="message"/> as one frame into <paramref name="writer"/> (entry bytes copied once).</summary>
    public static void Write(IBufferWriter<byte> writer, Message message)
    {
        var config = message.Config?.Encode();
        var size = FrameSize(message, config);
        if (size > FrameBytesMax)
        {
            throw new ArgumentOutOfRangeException(nameof(message), size, "a message frame is limited to " + FrameBytesMax + " bytes");
        }

        var fixedSize = FrameHeaderSize + FixedBodySize + (config is null ? 0 : 2 + config.Length);
        var span = writer.GetSpan(fixedSize);
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)(size - FrameHeaderSize));
        span[4] = (byte)message.Type;
        span[5] = (byte)(
            (message.Reject ? FlagReject : 0)
            | (message.Transfer ? FlagTransfer : 0)
            | (config is null ? 0 : FlagConfig)
            | (message.Differs ? FlagDiffers : 0)
        );
        BinaryPrimitives.WriteUInt32LittleEndian(span[6..], message.From.Value);
        BinaryPrimitives.WriteUInt32LittleEndian(span[10..], message.To.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[14..], message.Term.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[22..], message.LogTerm.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[30..], message.Index.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[38..], message.Commit.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[46..], message.RejectHint.Value);
        BinaryPrimitives.WriteInt64LittleEndian(span[54..], message.Round);
        BinaryPrimitives.WriteUInt64LittleEndian(span[62..], message.PrevHash);
        BinaryPrimitives.WriteUInt32LittleEndian(span[70..], (uint)message.Entries.Count);
        if (config is not null)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(span[74..], (ushort)config.Length);
            config.CopyTo(span[76..]);
        }

        writer.Advance(fixedSize);
        var entries = message.Entries;
        for (var i = 0; i < entries.Count; i++)
        {
            var entry = entries[i];
            var header = writer.GetSpan(EntryHeaderSize);
            BinaryPrimitives.WriteInt64LittleEndian(header, entry.Term.Value);
            header[8] = (byte)entry.Type;
            BinaryPrimitives.WriteInt32LittleEndian(header[9..], entry.Data.Length);
            writer.Advance(EntryHeaderSize);
            writer.Write(entry.Data.Span);
        }
    }

    /// <summary>
    /// Reads one frame from the front of <paramref name="buffer"/>. Returns false when the frame is not complete yet;
    /// throws <see cref="InvalidDataException"/> when it can never be valid. Entry bytes are copied into one array per
    /// message, so the message outlives the buffer.
    /// </summary>
    public static bool TryRead(ref ReadOnlySequence<byte> buffer, out Message? message)
    {
        message = null;
        if (buffer.Length < FrameHeaderSize)
        {
            return false;
        }

        Span<byte> lengthBytes = stackalloc byte[FrameHeaderSize];
        buffer.Slice(0, FrameHeaderSize).CopyTo(lengthBytes);
        var length = BinaryPrimitives.ReadUInt32LittleEndian(lengthBytes);
        if (length < FixedBodySize || length > FrameBytesMax)
        {
            throw new InvalidDataException("frame length " + length + " is outside [" + FixedBodySize + ", " + FrameBytesMax + "]");
        }

        if (buffer.Length < FrameHeaderSize + length)
        {
            return false;
        }

        var body = buffer.Slice(FrameHeaderSize, length);
        byte[]? rented = null;
        var bytes = body.IsSingleSegment ? body.FirstSpan : CopyOut(body, out rented);
        try
        {
            message = Decode(bytes);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }

        buffer = buffer.Slice(FrameHeaderSize + length);
        return true;
    }

    private static ReadOnlySpan<byte> CopyOut(ReadOnlySequence<byte> body, out byte[] rented)
    {
        rented = ArrayPool<byte>.Shared.Rent((int)body.Length);
        body.CopyTo(rented);
        return rented.AsSpan(0, (int)body.Length);
    }

    internal static Message Decode(ReadOnlySpan<byte> body)
    {
        var type = (MessageType)body[0];
        if (type is < MessageType.PreVote or > MessageType.Snapshot)
        {
            throw new InvalidDataException("unknown message type " + body[0]);
        }

        var flags = body[1];
        if ((flags & ~(FlagReject | FlagTransfer | FlagConfig | FlagDiffers)) != 0)
        {
            throw new InvalidDataException("unknown message flags " + flags);
        }

        var index = BinaryPrimitives.ReadInt64LittleEndian(body[26..]);
        var count = BinaryPrimitives.ReadUInt32LittleEndian(body[66..]);
        var position = FixedBodySize;
        var config = (flags & FlagConfig) != 0 ? DecodeConfig(body, ref position) : null;

        // Sizes are checked against the frame before anything proportional to them is allocated.
        var entriesStart = position;
        var dataBytes = CheckEntries(body, ref position, count);
        if (position != body.Length)
        {
            throw new InvalidDataException("frame has " + (body.Length - position) + " bytes after its last entry");
        }

        if (count > 0 && type != MessageType.Append)
        {
            throw new InvalidDataException(type + " carries no entries");
        }

        var entries = count > 0 ? DecodeEntries(body[entriesStart..], index, (int)count, dataBytes) : [];
        return new Message
        {
            Type = type,
            Reject = (flags & FlagReject) != 0,
            Transfer = (flags & FlagTransfer) != 0,
            Differs = (flags & FlagDiffers) != 0,
            From = new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(body[2..])),
            To = new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(body[6..])),
            Term = new Term(BinaryPrimitives.ReadInt64LittleEndian(body[10..])),
            LogTerm = new Term(BinaryPrimitives.ReadInt64LittleEndian(body[18..])),
            Index = new LogIndex(index),
            Commit = new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(body[34..])),
            RejectHint = new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(body[42..])),
            Round = BinaryPrimitives.ReadInt64LittleEndian(body[50..]),
            PrevHash = BinaryPrimitives.ReadUInt64LittleEndian(body[58..]),
            Entries = entries,
            Config = config,
        };
    }

    /// <summary>The configuration that follows the fixed fields (a 2-byte length, then the encoded configuration).</summary>
    private static ClusterConfig DecodeConfig(ReadOnlySpan<byte> body, ref int position)
    {
        if (body.Length < position + 2)
        {
            throw new InvalidDataException("frame ends inside the configuration");
        }

        var configLength = BinaryPrimitives.ReadUInt16LittleEndian(body[position..]);
        position += 2;
        if (body.Length < position + configLength)
        {
            throw new InvalidDataException("frame ends inside the configuration");
        }

        var config = ClusterConfig.Decode(body.Slice(position, configLength)); // InvalidDataException on garbage
        position += configLength;
        return config;
    }

    /// <summary>Checks every entry header against the frame, moves past them and returns the entries' total data bytes.</summary>
    private static long CheckEntries(ReadOnlySpan<byte> body, ref int position, uint count)
    {
        long dataBytes = 0;
        for (var i = 0L; i < count; i++)
        {
            if (body.Length - position < EntryHeaderSize)
            {
                throw new InvalidDataException("frame ends inside entry " + i + " of " + count);
            }

            var entryType = body[position + 8];
            var dataLength = BinaryPrimitives.ReadInt32LittleEndian(body[(position + 9)..]);
            if (
                entryType is < (byte)EntryKind.Normal or > (byte)EntryKind.Config
                || dataLength < 0
                || body.Length - position - EntryHeaderSize < dataLength
            )
            {
                throw new InvalidDataException("entry " + i + " has a bad type or length");
            }

            position += EntryHeaderSize + dataLength;
            dataBytes += dataLength;
        }

        return dataBytes;
    }

    /// <summary>
    /// The checked entries that start <paramref name="entries"/>, indexed from <paramref name="previousIndex"/> + 1, their
    /// data copied into one array so that they outlive the receive buffer.
    /// </summary>
    private static Entry[] DecodeEntries(ReadOnlySpan<byte> entries, long previousIndex, int count, long dataBytes)
    {
        var data = new byte[dataBytes];
        var list = new Entry[count];
        var position = 0;
        var offset = 0;
        for (var i = 0; i < count; i++)
        {
            var term = BinaryPrimitives.ReadInt64LittleEndian(entries[position..]);
            var entryType = (EntryKind)entries[position + 8];
            var dataLength = BinaryPrimitives.ReadInt32LittleEndian(entries[(position + 9)..]);
            entries.Slice(position + EntryHeaderSize, dataLength).CopyTo(data.AsSpan(offset));
            list[i] = new Entry(
                new LogIndex(previousIndex + 1 + i),
                new Term(term),
                entryType,
                new ReadOnlyMemory<byte>(data, offset, dataLength)
            );
            offset += dataLength;
            position += EntryHeaderSize + dataLength;
        }

        return list;
    }
}
