using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using FastSmr.Core.StateMachines;

namespace FastSmr.Core.Protocol;

/// <summary>
/// Encodes and decodes the client protocol. Every frame is a 24-byte little-endian header followed by a body:
/// <code>
///  0 u32 body length   4 u8 frame type   5 u8 flags   6 u16 status
///  8 u64 request id   16 u32 timeout (µs, 0 = server default)   20 u32 reserved, zero
/// </code>
/// Parsing follows the "Try" shape: false means "need more bytes"; a protocol violation throws
/// <see cref="ProtocolException"/>, after which the server sends an error frame and closes the connection.
/// </summary>
public static class FrameCodec
{
    /// <summary>The client protocol version carried in the handshake.</summary>
    public const ushort ProtocolVersion = 1;

    /// <summary>The magic number at the start of a Hello body ("FSMR").</summary>
    public const uint HelloMagic = 0x524D5346;

    /// <summary>The frame header size.</summary>
    public const int HeaderSize = 24;

    /// <summary>The Hello body size.</summary>
    public const int HelloSize = 16;

    /// <summary>The HelloReply body size.</summary>
    public const int HelloReplySize = 16;

    /// <summary>The StatusReply body size.</summary>
    public const int StatusReplySize = 64;

    /// <summary>Writes a frame header.</summary>
    public static void WriteHeader(Span<byte> destination, in FrameHeader header)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(destination.Length, HeaderSize);
        BinaryPrimitives.WriteInt32LittleEndian(destination, header.BodyLength);
        destination[4] = (byte)header.Type;
        destination[5] = header.Flags;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], (ushort)header.Status);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], header.RequestId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[16..], header.TimeoutMicros);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[20..], 0);
    }

    /// <summary>Reads a frame header from a contiguous span.</summary>
    /// <param name="source">At least <see cref="HeaderSize"/> bytes.</param>
    /// <param name="bodyLengthMax">The largest body accepted.</param>
    /// <exception cref="ProtocolException">Unknown frame type, or a body length that is negative or above the limit.</exception>
    public static FrameHeader ReadHeader(ReadOnlySpan<byte> source, int bodyLengthMax)
    {
        var length = BinaryPrimitives.ReadInt32LittleEndian(source);
        var type = (FrameType)source[4];
        if (type is < FrameType.Hello or > FrameType.Error)
        {
            throw new ProtocolException("unknown frame type " + ((int)type).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }

        if (length < 0 || length > bodyLengthMax)
        {
            throw new ProtocolException(
                "frame body length "
                    + length.ToString(System.Globalization.CultureInfo.InvariantCulture)
                    + " outside 0.."
                    + bodyLengthMax.ToString(System.Globalization.CultureInfo.InvariantCulture)
            );
        }

        return new FrameHeader(
            length,
            type,
            source[5],
            (SubmitStatus)BinaryPrimitives.ReadUInt16LittleEndian(source[6..]),
            BinaryPrimitives.ReadUInt64LittleEndian(source[8..]),
            BinaryPrimitives.ReadUInt32LittleEndian(source[16..])
        );
    }

    /// <summary>Tries to take one whole frame off the front of <paramref name="buffer"/>.</summary>
    /// <param name="buffer">The received bytes; on success advanced past the frame.</param>
    /// <param name="bodyLengthMax">The largest body accepted.</param>
    /// <param name="header">The frame header.</param>
    /// <param name="body">The frame body (a slice of the original buffer).</param>
    /// <returns>False when more bytes are needed.</returns>
    /// <exception cref="ProtocolException">The frame violates the protocol.</exception>
    public static bool TryReadFrame(
        ref ReadOnlySequence<byte> buffer,
        int bodyLengthMax,
        out FrameHeader header,
        out ReadOnlySequence<byte> body
    )
    {
        body = default;
        header = default;
        if (buffer.Length < HeaderSize)
        {
            return false;
        }

        Span<byte> headerBytes = stackalloc byte[HeaderSize];
        if (buffer.FirstSpan.Length >= HeaderSize)
        {
            buffer.FirstSpan[..HeaderSize].CopyTo(headerBytes);
        }
        else
        {
            buffer.Slice(0, HeaderSize).CopyTo(headerBytes);
        }

        header = ReadHeader(headerBytes, bodyLengthMax);
        if (buffer.Length - HeaderSize < header.BodyLength)
        {
            return false;
        }

        body = buffer.Slice(HeaderSize, header.BodyLength);
        buffer = buffer.Slice(body.End);
        return true;
    }

    /// <summary>Writes a whole frame (header and body) to <paramref name="writer"/>.</summary>
    public static void WriteFrame(
        IBufferWriter<byte> writer,
        FrameType type,
        byte flags,
        SubmitStatus status,
        ulong requestId,
        uint timeoutMicros,
        ReadOnlySpan<byte> body
    )
    {
        ArgumentNullException.ThrowIfNull(writer);
        var span = writer.GetSpan(HeaderSize + body.Length);
        WriteHeader(span, new FrameHeader(body.Length, type, flags, status, requestId, timeoutMicros));
        body.CopyTo(span[HeaderSize..]);
        writer.Advance(HeaderSize + body.Length);
    }

    /// <summary>Writes a Hello body.</summary>
    public static void WriteHello(Span<byte> destination, ulong clusterId, ushort protocolVersion = ProtocolVersion)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, HelloMagic);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[4..], protocolVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[6..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], clusterId);
    }

    /// <summary>Reads a Hello body.</summary>
    /// <exception cref="ProtocolException">Wrong size or magic.</exception>
    public static (ushort ProtocolVersion, ulong ClusterId) ReadHello(ReadOnlySpan<byte> body)
    {
        if (body.Length != HelloSize || BinaryPrimitives.ReadUInt32LittleEndian(body) != HelloMagic)
        {
            throw new ProtocolException("malformed hello");
        }

        return (BinaryPrimitives.ReadUInt16LittleEndian(body[4..]), BinaryPrimitives.ReadUInt64LittleEndian(body[8..]));
    }

    /// <summary>Writes a HelloReply body.</summary>
    public static void WriteHelloReply(Span<byte> destination, ReplicaId replicaId, ulong clusterId)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(destination, ProtocolVersion);
        BinaryPrimitives.WriteUInt16LittleEndian(destination[2..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[4..], replicaId.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[8..], clusterId);
    }

    /// <summary>Reads a HelloReply body.</summary>
    public static (ushort ProtocolVersion, ReplicaId ReplicaId, ulong ClusterId) ReadHelloReply(ReadOnlySpan<byte> body)
    {
        if (body.Length != HelloReplySize)
        {
            throw new ProtocolException("malformed hello reply");
        }

        return (
            BinaryPrimitives.ReadUInt16LittleEndian(body),
            new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(body[4..])),
            BinaryPrimitives.ReadUInt64LittleEndian(body[8..])
        );
    }

    /// <summary>Writes a NotLeader body: the leader's id (0 if unknown) and its client endpoint in UTF-8 (may be empty).</summary>
    public static int WriteNotLeader(Span<byte> destination, ReplicaId leaderId, string? leaderEndpoint)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, leaderId.Value);
        var written = leaderEndpoint is null ? 0 : Encoding.UTF8.GetBytes(leaderEndpoint, destination[4..]);
        return 4 + written;
    }

    /// <summary>The largest NotLeader body.</summary>
    public const int NotLeaderSizeMax = 4 + 256;

    /// <summary>Reads a NotLeader body.</summary>
    public static (ReplicaId LeaderId, string? LeaderEndpoint) ReadNotLeader(ReadOnlySpan<byte> body)
    {
        if (body.Length < 4 || body.Length > NotLeaderSizeMax)
        {
            return (ReplicaId.None, null);
        }

        var id = new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(body));
        return (id, body.Length == 4 ? null : Encoding.UTF8.GetString(body[4..]));
    }

    /// <summary>Writes a StatusReply body.</summary>
    public static void WriteStatus(Span<byte> destination, in StatusReport status)
    {
        destination[..StatusReplySize].Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(destination, status.ReplicaId.Value);
        destination[4] = (byte)status.Role;
        BinaryPrimitives.WriteInt64LittleEndian(destination[8..], status.Term.Value);
        BinaryPrimitives.WriteInt64LittleEndian(destination[16..], status.CommitIndex.Value);
        BinaryPrimitives.WriteInt64LittleEndian(destination[24..], status.AppliedIndex.Value);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[32..], status.Digest.High);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[40..], status.Digest.Low);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[48..], status.LeaderId.Value);
        BinaryPrimitives.WriteInt64LittleEndian(destination[56..], status.ProcessAllocatedBytes);
    }

    /// <summary>Reads a StatusReply body.</summary>
    public static StatusReport ReadStatus(ReadOnlySpan<byte> body)
    {
        if (body.Length != StatusReplySize)
        {
            throw new ProtocolException("malformed status reply");
        }

        return new StatusReport(
            new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(body)),
            (ReplicaRole)body[4],
            new Term(BinaryPrimitives.ReadInt64LittleEndian(body[8..])),
            new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(body[16..])),
            new LogIndex(BinaryPrimitives.ReadInt64LittleEndian(body[24..])),
            new StateDigest(BinaryPrimitives.ReadUInt64LittleEndian(body[32..]), BinaryPrimitives.ReadUInt64LittleEndian(body[40..])),
            new ReplicaId(BinaryPrimitives.ReadUInt32LittleEndian(body[48..])),
            BinaryPrimitives.ReadInt64LittleEndian(body[56..])
        );
    }
}
