using System.Buffers;
using System.Net.Sockets;
using FastSmr.Client;
using FastSmr.Core;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;

/// <summary>Bad input on the client port gets an error frame and a closed connection, never a crash.</summary>
[Collection(ClusterCollection.Name)]
public class ServerProtocolTests
{
    private static async Task<(FrameType? Type, string Text, bool Closed)> SendRawAsync(string endPoint, byte[] bytes)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(EndPointParser.Parse(endPoint));
        await socket.SendAsync(bytes, SocketFlags.None);
        var buffer = new byte[4096];
        var filled = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        FrameType? type = null;
        var text = "";
        while (true)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, timeout.Token);
            if (read == 0)
            {
                return (type, text, true);
            }

            filled += read;
            var sequence = new ReadOnlySequence<byte>(buffer, 0, filled);
            while (FrameCodec.TryReadFrame(ref sequence, 4096, out var header, out var body))
            {
                // Report the error frame when there is one (a hello reply may come first).
                if (type != FrameType.Error)
                {
                    type = header.Type;
                    text = System.Text.Encoding.UTF8.GetString(body.ToArray());
                }
            }
        }
    }

    [Fact]
    public async Task BadInput_GetsAnErrorAndAClosedConnection_AndTheReplicaKeepsServing()
    {
        await using var cluster = new InProcessCluster(1, DurabilityMode.Memory, insecure: true);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var endPoint = cluster.ClientEndPoints[0];

        var garbage = new byte[1000];
        new Random(7).NextBytes(garbage);
        garbage[4] = 250; // an unknown frame type
        var (type, text, closed) = await SendRawAsync(endPoint, garbage);
        Assert.True(closed);
        Assert.Equal(FrameType.Error, type);
        Assert.Contains("frame type", text, StringComparison.Ordinal);

        var notHello = new ArrayBufferWriter<byte>();
        FrameCodec.WriteFrame(notHello, FrameType.Status, 0, SubmitStatus.Ok, 1, 0, []);
        (type, text, closed) = await SendRawAsync(endPoint, notHello.WrittenSpan.ToArray());
        Assert.True(closed);
        Assert.Contains("Hello", text, StringComparison.Ordinal);

        (type, text, closed) = await SendRawAsync(endPoint, RawClientFrames.Hello(clusterId: 999));
        Assert.True(closed);
        Assert.Contains("cluster id", text, StringComparison.Ordinal);

        // An oversized length is refused from the header alone: the server never buffers the body.
        var oversized = new byte[FrameCodec.HeaderSize];
        FrameCodec.WriteHeader(oversized, new FrameHeader(int.MaxValue, FrameType.Submit, 0, SubmitStatus.Ok, 2, 0));
        (type, text, closed) = await SendRawAsync(endPoint, [.. RawClientFrames.Hello(1), .. oversized]);
        Assert.True(closed);
        Assert.Contains("length", text, StringComparison.Ordinal);

        // A submit whose record length disagrees with the frame is rejected, not applied.
        var bad = new ArrayBufferWriter<byte>();
        var record = new byte[FrameCodec.HeaderSize];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(record, 1_000);
        FrameCodec.WriteFrame(bad, FrameType.Submit, 0, SubmitStatus.Ok, 3, 0, record);
        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(EndPointParser.Parse(endPoint));
            await socket.SendAsync(RawClientFrames.Hello(1), SocketFlags.None);
            await socket.SendAsync(bad.WrittenMemory, SocketFlags.None);
            var buffer = new byte[256];
            var filled = 0;
            ReadOnlySequence<byte> sequence;
            FrameHeader header = default;
            var frames = 0;
            while (frames < 2)
            {
                filled += await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                sequence = new ReadOnlySequence<byte>(buffer, 0, filled);
                frames = 0;
                while (FrameCodec.TryReadFrame(ref sequence, 4096, out var parsed, out _))
                {
                    header = parsed;
                    frames++;
                }
            }

            Assert.Equal(FrameType.SubmitReply, header.Type);
            Assert.Equal(SubmitStatus.Rejected, header.Status);
        }

        // After all that, a well-behaved client is served.
        await using var client = cluster.NewClient();
        var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("still"), Kv.Key("alive")));
        Assert.Equal(SubmitStatus.Ok, result.Status);
        var status = await FastSmrClient.GetStatusAsync(endPoint, 1, TimeSpan.FromSeconds(5), tls: null);
        Assert.Equal(ReplicaRole.Leader, status.Role);
        Assert.True(status.AppliedIndex >= new LogIndex(1));
    }

    [Fact]
    public async Task TooManyInFlightOnOneConnection_AreAnsweredBusy()
    {
        await using var cluster = new InProcessCluster(1, DurabilityMode.Durable, configure: o => o.InFlightPerConnectionMax = 2, insecure: true);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(EndPointParser.Parse(cluster.ClientEndPoints[0]));
        var frames = new ArrayBufferWriter<byte>();
        frames.Write(RawClientFrames.Hello(1));
        const int Requests = 64;
        for (var i = 0; i < Requests; i++)
        {
            var command = KvCommand.Put(Kv.Key("k" + i), Kv.Key("v"));
            var record = new byte[Core.Batching.BatchFormat.RecordHeaderSize + command.Length];
            Core.Batching.BatchFormat.WriteRecordHeader(record, command.Length, Core.Batching.CommandOptions.None, 0, 0);
            command.CopyTo(record, Core.Batching.BatchFormat.RecordHeaderSize);
            FrameCodec.WriteFrame(frames, FrameType.Submit, 0, SubmitStatus.Ok, (ulong)(i + 1), 0, record);
        }

        // All 64 arrive in one burst, so at most two can be in flight and the rest must be refused.
        await socket.SendAsync(frames.WrittenMemory, SocketFlags.None);
        var statuses = await RawClientFrames.ReadStatusesAsync(socket, Requests + 1, TimeSpan.FromSeconds(30));
        var replies = statuses.Skip(1).ToList();
        Assert.Contains(SubmitStatus.Busy, replies);
        Assert.Contains(SubmitStatus.Ok, replies);
        Assert.All(replies, s => Assert.True(s is SubmitStatus.Ok or SubmitStatus.Busy, s.ToString()));
    }
}
