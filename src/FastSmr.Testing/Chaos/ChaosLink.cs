using System.Net;
using System.Net.Sockets;

namespace FastSmr.Testing.Chaos;

/// <summary>
/// One proxied path: a listening port on 127.0.0.1 that forwards every accepted connection to one target, and can be
/// told, while running, to lose bytes one way or both ways, cut its connections, delay, or cap bandwidth.
/// </summary>
/// <remarks>
/// Lost bytes are discarded, not queued, so a partitioned link looks like a black hole to both ends. Because a stream
/// that lost bytes in the middle would deliver torn frames, every connection that lost bytes is cut when the link heals;
/// new connections then start clean. Concurrency profile: the controls may be changed from any thread at any time.
/// </remarks>
public sealed class ChaosLink : IAsyncDisposable
{
    private readonly IPEndPoint target;
    private readonly Socket listener;
    private readonly CancellationTokenSource stopping = new();
    private readonly HashSet<Connection> connections = [];
    private Task? acceptLoop;
    private volatile bool dropForward;
    private volatile bool dropBackward;
    private long delayTicks;
    private long bytesPerSecond;

    /// <summary>Creates a link listening on a free port of <paramref name="listenAddress"/> (127.0.0.1 by default).</summary>
    public ChaosLink(IPEndPoint target, IPAddress? listenAddress = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        this.target = target;
        listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(listenAddress ?? IPAddress.Loopback, 0));
        listener.Listen(128);
        EndPoint = (IPEndPoint)listener.LocalEndPoint!;
    }

    /// <summary>Where clients connect.</summary>
    public IPEndPoint EndPoint { get; }

    /// <summary>How many connections are open through the link.</summary>
    public int OpenConnections
    {
        get
        {
            lock (connections)
            {
                return connections.Count;
            }
        }
    }

    /// <summary>Bytes from the connecting side to the target are discarded while true.</summary>
    public bool DropForward
    {
        get => dropForward;
        set
        {
            var was = dropForward;
            dropForward = value;
            CutLossyIfHealed(was, value);
        }
    }

    /// <summary>Bytes from the target back to the connecting side are discarded while true.</summary>
    public bool DropBackward
    {
        get => dropBackward;
        set
        {
            var was = dropBackward;
            dropBackward = value;
            CutLossyIfHealed(was, value);
        }
    }

    /// <summary>Added before every forwarded chunk, in both directions (order is kept).</summary>
    public TimeSpan Delay
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref delayTicks));
        set => Interlocked.Exchange(ref delayTicks, Math.Max(0, value.Ticks));
    }

    /// <summary>The most bytes per second forwarded in each direction of each connection; 0 means no cap.</summary>
    public long BandwidthBytesPerSecond
    {
        get => Interlocked.Read(ref bytesPerSecond);
        set => Interlocked.Exchange(ref bytesPerSecond, Math.Max(0, value));
    }

    /// <summary>Starts accepting.</summary>
    public void Start() => acceptLoop ??= Task.Run(AcceptLoopAsync);

    /// <summary>Loses bytes both ways (a partition of this path).</summary>
    public void Partition()
    {
        DropForward = true;
        DropBackward = true;
    }

    /// <summary>Stops losing bytes; connections that lost bytes are cut, so no torn frame arrives afterwards.</summary>
    public void Heal()
    {
        DropForward = false;
        DropBackward = false;
    }

    /// <summary>Closes every open connection (both sides see a reset or an end of stream).</summary>
    public void CutConnections()
    {
        Connection[] open;
        lock (connections)
        {
            open = [.. connections];
        }

        foreach (var connection in open)
        {
            connection.Close();
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        listener.Dispose();
        CutConnections();
        if (acceptLoop is not null)
        {
            await acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        stopping.Dispose();
    }

    private void CutLossyIfHealed(bool was, bool value)
    {
        if (was && !value)
        {
            // Healing: a stream that lost bytes in the middle must not deliver what follows the gap.
            Connection[] open;
            lock (connections)
            {
                open = [.. connections];
            }

            foreach (var connection in open)
            {
                if (connection.LostBytes)
                {
                    connection.Close();
                }
            }
        }
    }

    private async Task AcceptLoopAsync()
    {
        var token = stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket inbound;
            try
            {
                inbound = await listener.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }

            _ = Task.Run(() => ServeAsync(inbound, token), CancellationToken.None);
        }
    }

    private async Task ServeAsync(Socket inbound, CancellationToken token)
    {
        var outbound = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        inbound.NoDelay = true;
        try
        {
            await outbound.ConnectAsync(target, token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
            inbound.Dispose();
            outbound.Dispose();
            return;
        }

        var connection = new Connection(inbound, outbound);
        lock (connections)
        {
            connections.Add(connection);
        }

        try
        {
            await Task.WhenAll(
                    PumpAsync(connection, inbound, outbound, forward: true, token),
                    PumpAsync(connection, outbound, inbound, forward: false, token)
                )
                .ConfigureAwait(false);
        }
        finally
        {
            connection.Close();
            lock (connections)
            {
                connections.Remove(connection);
            }
        }
    }

    private async Task PumpAsync(Connection connection, Socket from, Socket to, bool forward, CancellationToken token)
    {
        var buffer = new byte[16 * 1024];
        try
        {
            while (true)
            {
                var read = await from.ReceiveAsync(buffer, SocketFlags.None, token).ConfigureAwait(false);
                if (read == 0)
                {
                    break;
                }

                if (forward ? dropForward : dropBackward)
                {
                    connection.LostBytes = true;
                    continue;
                }

                var delay = Delay;
                var cap = BandwidthBytesPerSecond;
                if (cap > 0)
                {
                    delay += TimeSpan.FromSeconds(read / (double)cap);
                }

                if (delay > TimeSpan.Zero)
                {
                    await Task.Delay(delay, token).ConfigureAwait(false);
                }

                await to.SendAsync(buffer.AsMemory(0, read), SocketFlags.None, token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            // One side ended: end the whole connection, as a real network path would.
            connection.Close();
        }
    }

    private sealed class Connection(Socket inbound, Socket outbound)
    {
        private int closed;

        public volatile bool LostBytes;

        public void Close()
        {
            if (Interlocked.Exchange(ref closed, 1) != 0)
            {
                return;
            }

            foreach (var socket in new[] { inbound, outbound })
            {
                try
                {
                    socket.LingerState = new LingerOption(true, 0); // a reset, not a graceful close
                    socket.Dispose();
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
            }
        }
    }
}
