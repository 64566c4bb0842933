using System.Buffers;
using System.Diagnostics;
using System.Net.Sockets;
using FastSmr.Client;
using FastSmr.Core;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Testing;
using FastSmr.Testing.Clusters;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// Issue 13's attacks on the client port of d9a8542: a client that never read its replies pinned 487 MB, and 1,024
/// idle connections locked every client out. Each connection now has an output budget, a Hello deadline and an idle
/// deadline.
/// </summary>
[Collection(ClusterCollection.Name)]
public class ClientPortBoundsTests(ITestOutputHelper output)
{
    private static byte[] Frame(FrameType type, ulong requestId, ReadOnlySpan<byte> body)
    {
        var writer = new ArrayBufferWriter<byte>();
        FrameCodec.WriteFrame(writer, type, type == FrameType.Read ? (byte)ReadConsistency.Local : (byte)0, SubmitStatus.Ok, requestId, 0, body);
        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Reads until the server closes the connection (true) or the time is up (false).</summary>
    private static async Task<bool> ClosedWithinAsync(Socket socket, TimeSpan limit)
    {
        var buffer = new byte[1 << 16];
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token) > 0)
            {
            }

            return true;
        }
        catch (SocketException)
        {
            return true; // reset
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task AClientThatNeverReadsItsReplies_IsClosed_OnceTheyPassTheOutputBudget()
    {
        await using var cluster = new InProcessCluster(1, DurabilityMode.Durable, configure: o => o.ConnectionOutputBytesMax = 1 << 20, insecure: true);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        await using var client = cluster.NewClient();
        Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("big"), new byte[60_000]))).Status);

        // 1,000 reads of a 60 kB value (60 MB of replies), sent without reading one reply, into a small receive buffer.
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4_096 };
        await socket.ConnectAsync(EndPointParser.Parse(cluster.ClientEndPoints[0]));
        var frames = new ArrayBufferWriter<byte>();
        frames.Write(RawClientFrames.Hello());
        for (var i = 1; i <= 1_000; i++)
        {
            frames.Write(Frame(FrameType.Read, (ulong)i, KvCommand.Get(Kv.Key("big"))));
        }

        var watch = Stopwatch.StartNew();
        var sending = socket.SendAsync(frames.WrittenMemory, SocketFlags.None).AsTask();

        // The server closes it by itself: the test reads nothing until the socket is already closed on the far side.
        var closed = await Wait.TryUntilAsync(() => Task.FromResult(cluster.Running.Single().OpenConnections == 1), TimeSpan.FromSeconds(20));
        output.WriteLine($"closed by the server after {watch.ElapsedMilliseconds} ms");
        Assert.NotNull(closed);
        Assert.True(await ClosedWithinAsync(socket, TimeSpan.FromSeconds(20)), "the connection stayed open");
        await Task.WhenAny(sending, Task.Delay(TimeSpan.FromSeconds(10))); // the send ends (or fails) once the socket is gone
        Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("after"), Kv.Key("v")))).Status);
    }

    [Fact]
    public async Task ConnectionsThatSendNoHello_AreClosed_AndCannotLockClientsOut()
    {
        await using var cluster = new InProcessCluster(
            1,
            DurabilityMode.Durable,
            configure: o =>
            {
                o.ConnectionsMax = 4;
                o.ClientHelloTimeoutMs = 500;
            }
        );
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var silent = new List<Socket>();
        try
        {
            for (var i = 0; i < 8; i++)
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                silent.Add(socket);
                await socket.ConnectAsync(EndPointParser.Parse(cluster.ClientEndPoints[0]));
            }

            var watch = Stopwatch.StartNew();
            foreach (var socket in silent)
            {
                Assert.True(await ClosedWithinAsync(socket, TimeSpan.FromSeconds(10)), "a connection without Hello stayed open");
            }

            output.WriteLine($"all 8 silent connections closed within {watch.ElapsedMilliseconds} ms");
            await using var client = cluster.NewClient();
            Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("v")))).Status);
        }
        finally
        {
            silent.ForEach(s => s.Dispose());
        }
    }

    [Fact]
    public async Task AnIdleConnection_IsClosed_AndTheClientReconnectsByItself()
    {
        await using var cluster = new InProcessCluster(1, DurabilityMode.Durable, configure: o => o.ClientIdleTimeoutMs = 1_000, insecure: true);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        using (var socket = new Socket(SocketType.Stream, ProtocolType.Tcp))
        {
            await socket.ConnectAsync(EndPointParser.Parse(cluster.ClientEndPoints[0]));
            await socket.SendAsync(RawClientFrames.Hello(), SocketFlags.None);
            Assert.True(await ClosedWithinAsync(socket, TimeSpan.FromSeconds(10)), "an idle connection stayed open");
        }

        await using var client = cluster.NewClient();
        Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("a"), Kv.Key("1")))).Status);
        await Wait.UntilAsync(() => cluster.Running.Single().OpenConnections == 0, TimeSpan.FromSeconds(10), "the idle client connection was closed");
        Assert.Equal(SubmitStatus.Ok, (await client.SubmitAsync(KvCommand.Put(Kv.Key("b"), Kv.Key("2")))).Status);
    }

    [Fact]
    public async Task StatusRequests_BeyondTheServersRate_AreAnsweredBusy()
    {
        await using var cluster = new InProcessCluster(1, DurabilityMode.Durable, configure: o => o.StatusPerSecondMax = 5, insecure: true);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(EndPointParser.Parse(cluster.ClientEndPoints[0]));
        var frames = new ArrayBufferWriter<byte>();
        frames.Write(RawClientFrames.Hello());
        const int Requests = 50;
        for (var i = 1; i <= Requests; i++)
        {
            frames.Write(Frame(FrameType.Status, (ulong)i, default));
        }

        await socket.SendAsync(frames.WrittenMemory, SocketFlags.None);
        var statuses = await RawClientFrames.ReadStatusesAsync(socket, Requests + 1, TimeSpan.FromSeconds(30));
        var answered = statuses.Skip(1).Count(s => s == SubmitStatus.Ok);
        var busy = statuses.Skip(1).Count(s => s == SubmitStatus.Busy);
        output.WriteLine($"{answered} answered, {busy} busy");
        Assert.Equal(Requests, answered + busy);
        Assert.InRange(answered, 1, 15);
    }
}
