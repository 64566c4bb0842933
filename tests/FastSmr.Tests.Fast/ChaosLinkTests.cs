using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using FastSmr.Testing.Chaos;

namespace FastSmr.Tests;

public class ChaosLinkTests
{
    /// <summary>An echo server on 127.0.0.1 that counts what it received.</summary>
    private sealed class EchoServer : IAsyncDisposable
    {
        private readonly TcpListener listener = new(IPAddress.Loopback, 0);
        private readonly CancellationTokenSource stop = new();
        private readonly Task loop;
        private long received;

        public EchoServer()
        {
            listener.Start();
            loop = Task.Run(AcceptAsync);
        }

        public IPEndPoint EndPoint => (IPEndPoint)listener.LocalEndpoint;

        public long Received => Interlocked.Read(ref received);

        private async Task AcceptAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(stop.Token);
                }
                catch (Exception)
                {
                    return;
                }

                _ = Task.Run(async () =>
                {
                    using var owned = socket;
                    var buffer = new byte[4096];
                    try
                    {
                        while (true)
                        {
                            var read = await socket.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                            if (read == 0)
                            {
                                return;
                            }

                            Interlocked.Add(ref received, read);
                            await socket.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, stop.Token);
                        }
                    }
                    catch (Exception)
                    {
                    }
                });
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
            await loop;
        }
    }

    private static async Task<Socket> ConnectAsync(ChaosLink link)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(link.EndPoint);
        return socket;
    }

    /// <summary>Sends bytes and waits (bounded) for that many bytes back; returns how many came back.</summary>
    private static async Task<int> RoundTripAsync(Socket socket, int length, TimeSpan wait)
    {
        await socket.SendAsync(new byte[length], SocketFlags.None);
        var buffer = new byte[length];
        var got = 0;
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            while (got < length)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, timeout.Token);
                if (read == 0)
                {
                    break;
                }

                got += read;
            }
        }
        catch (OperationCanceledException)
        {
        }

        return got;
    }

    private static async Task<bool> IsClosedAsync(Socket socket, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            return await socket.ReceiveAsync(new byte[16], SocketFlags.None, timeout.Token) == 0;
        }
        catch (SocketException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task HealthyLink_ForwardsBothWays()
    {
        await using var server = new EchoServer();
        await using var link = new ChaosLink(server.EndPoint);
        link.Start();
        using var socket = await ConnectAsync(link);
        Assert.Equal(1000, await RoundTripAsync(socket, 1000, TimeSpan.FromSeconds(10)));
        Assert.Equal(1, link.OpenConnections);
    }

    [Fact]
    public async Task Delay_IsAddedInEachDirection()
    {
        await using var server = new EchoServer();
        await using var link = new ChaosLink(server.EndPoint) { Delay = TimeSpan.FromMilliseconds(100) };
        link.Start();
        using var socket = await ConnectAsync(link);
        var watch = Stopwatch.StartNew();
        Assert.Equal(10, await RoundTripAsync(socket, 10, TimeSpan.FromSeconds(10)));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(190), $"round trip took {watch.Elapsed}");
    }

    [Fact]
    public async Task BandwidthCap_SlowsTheTransfer()
    {
        await using var server = new EchoServer();
        await using var link = new ChaosLink(server.EndPoint) { BandwidthBytesPerSecond = 20_000 };
        link.Start();
        using var socket = await ConnectAsync(link);
        var watch = Stopwatch.StartNew();
        Assert.Equal(8_000, await RoundTripAsync(socket, 8_000, TimeSpan.FromSeconds(10)));
        Assert.True(watch.Elapsed >= TimeSpan.FromMilliseconds(700), $"8 kB each way at 20 kB/s took {watch.Elapsed}");
    }

    [Fact]
    public async Task OneWayLoss_DiscardsThatDirection_AndHealCutsTheLossyConnection()
    {
        await using var server = new EchoServer();
        await using var link = new ChaosLink(server.EndPoint);
        link.Start();
        using var socket = await ConnectAsync(link);
        Assert.Equal(10, await RoundTripAsync(socket, 10, TimeSpan.FromSeconds(10)));

        // Replies lost: the server still receives, the client hears nothing.
        link.DropBackward = true;
        Assert.Equal(0, await RoundTripAsync(socket, 10, TimeSpan.FromMilliseconds(300)));
        Assert.Equal(20, server.Received);

        // Requests lost: the server receives nothing more.
        link.DropForward = true;
        link.DropBackward = false;
        Assert.True(await IsClosedAsync(socket, TimeSpan.FromSeconds(5)), "healing the lossy direction must cut the connection");

        using var second = await ConnectAsync(link);
        Assert.Equal(0, await RoundTripAsync(second, 10, TimeSpan.FromMilliseconds(300)));
        Assert.Equal(20, server.Received);
        link.Heal();
        Assert.True(await IsClosedAsync(second, TimeSpan.FromSeconds(5)));

        using var third = await ConnectAsync(link);
        Assert.Equal(10, await RoundTripAsync(third, 10, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task Partition_BlackHolesBothWays_UntilHealed()
    {
        await using var server = new EchoServer();
        await using var link = new ChaosLink(server.EndPoint);
        link.Start();
        link.Partition();
        using var socket = await ConnectAsync(link);
        Assert.Equal(0, await RoundTripAsync(socket, 10, TimeSpan.FromMilliseconds(300)));
        Assert.Equal(0, server.Received);
        link.Heal();
        Assert.True(await IsClosedAsync(socket, TimeSpan.FromSeconds(5)));
        using var after = await ConnectAsync(link);
        Assert.Equal(10, await RoundTripAsync(after, 10, TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task CutConnections_ClosesOpenConnections_NewOnesWork()
    {
        await using var server = new EchoServer();
        await using var link = new ChaosLink(server.EndPoint);
        link.Start();
        using var socket = await ConnectAsync(link);
        Assert.Equal(10, await RoundTripAsync(socket, 10, TimeSpan.FromSeconds(10)));
        link.CutConnections();
        Assert.True(await IsClosedAsync(socket, TimeSpan.FromSeconds(5)));
        using var again = await ConnectAsync(link);
        Assert.Equal(10, await RoundTripAsync(again, 10, TimeSpan.FromSeconds(10)));
    }
}
