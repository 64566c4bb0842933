using System.Buffers;
using System.Net.Sockets;
using FastSmr.Core.Protocol;

namespace FastSmr.Tests;

/// <summary>Client-protocol frames written and read by hand, for tests that talk to the client port below the client library.</summary>
internal static class RawClientFrames
{
    /// <summary>A Hello frame for <paramref name="clusterId"/>.</summary>
    public static byte[] Hello(ulong clusterId = 1)
    {
        var writer = new ArrayBufferWriter<byte>();
        var body = new byte[FrameCodec.HelloSize];
        FrameCodec.WriteHello(body, clusterId);
        FrameCodec.WriteFrame(writer, FrameType.Hello, 0, SubmitStatus.Ok, 0, 0, body);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Reads replies until <paramref name="count"/> whole frames have arrived; their statuses in order.</summary>
    public static async Task<List<SubmitStatus>> ReadStatusesAsync(Socket socket, int count, TimeSpan limit)
    {
        var statuses = new List<SubmitStatus>();
        var buffer = new byte[1 << 16];
        var filled = 0;
        using var timeout = new CancellationTokenSource(limit);
        while (statuses.Count < count)
        {
            filled += await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, timeout.Token);
            var sequence = new ReadOnlySequence<byte>(buffer, 0, filled);
            statuses.Clear();
            while (FrameCodec.TryReadFrame(ref sequence, 4096, out var header, out _))
            {
                statuses.Add(header.Status);
            }
        }

        return statuses;
    }
}
