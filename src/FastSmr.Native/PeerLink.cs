using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>The outgoing side towards one peer.</summary>
internal sealed class PeerLink(PeerTransport owner, int id, IPEndPoint dial)
{
    private const long RetryUs = 50_000; // between connection attempts
    private readonly Lock gate = new();
    private PeerConnection? connection;
    private bool connecting;
    private long lastAttempt = long.MinValue / 2;
    private int snapshotSending;
    private bool written;

    public long DroppedCount;

    public void Send(Message message)
    {
        var current = Volatile.Read(ref connection);
        if (current is null || current.Failed)
        {
            Interlocked.Increment(ref DroppedCount);
            Reconnect(current);
            return;
        }

        if (!current.TryWrite(message, owner.Options.PeerQueueBytesMax))
        {
            Interlocked.Increment(ref DroppedCount);
            return;
        }

        written = true;
    }

    public void Flush()
    {
        if (!written)
        {
            return;
        }

        written = false;
        var current = Volatile.Read(ref connection);
        if (current is not null)
        {
            if (current.Flush() is { } draining)
            {
                owner.Track(draining);
            }
        }
    }

    /// <summary>Connects now if there is no connection (paced like any reconnect), so that the hello goes out unasked.</summary>
    public void EnsureConnected()
    {
        var current = Volatile.Read(ref connection);
        if (current is null || current.Failed)
        {
            Reconnect(current);
        }
    }

    public void SendSnapshot(Message message, string path)
    {
        if (Interlocked.CompareExchange(ref snapshotSending, 1, 0) != 0)
        {
            return; // one at a time; the core asks again if this one does not arrive
        }

        owner.Track(
            Task.Run(async () =>
            {
                try
                {
                    await owner.SendSnapshotFileAsync(id, dial, message, path).ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref snapshotSending, 0);
                }
            })
        );
    }

    public void Close()
    {
        lock (gate)
        {
            connection?.Close();
            connection = null;
        }
    }

    private void Reconnect(PeerConnection? failed)
    {
        lock (gate)
        {
            if (failed is not null && ReferenceEquals(connection, failed))
            {
                failed.Close();
                connection = null;
            }

            var now = owner.Clock.NowUs();
            if (connecting || connection is not null || now - lastAttempt < RetryUs || owner.Stopping.IsCancellationRequested)
            {
                return;
            }

            connecting = true;
            lastAttempt = now;
        }

        owner.Track(Task.Run(ConnectAsync));
    }

    private async Task ConnectAsync()
    {
        var socket = new Socket(dial.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        PeerConnection? opened = null;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(owner.Stopping.Token);
            timeout.CancelAfter(PeerTransport.ConnectTimeout);
            await socket.ConnectAsync(dial, timeout.Token).ConfigureAwait(false);
            var sealer = owner.Options.Tls is { } tls
                ? await TlsSealer.ConnectAsync(socket, tls, new ReplicaId((uint)id), timeout.Token).ConfigureAwait(false)
                : null;
            opened = new PeerConnection(socket, sealer);
            var hello = new byte[WireFormat.HelloSize];
            var flags = owner.Fresh?.Invoke() == true ? WireFormat.HelloFresh : (byte)0;
            WireFormat.WriteHello(hello, WireFormat.KindMessages, owner.Options.ClusterId, owner.Self, flags);
            opened.WriteRaw(hello);
            if (opened.Flush() is { } draining) // at once, before the connection is shared: the peer learns who connected
            {
                owner.Track(draining);
            }
        }
        catch (Exception e)
            when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or AuthenticationException)
        {
            NativeLog.ConnectFailed(owner.Logger, id, dial, e.Message);
            socket.Dispose();
            opened = null;
        }
        finally
        {
            lock (gate)
            {
                connecting = false;
                if (opened is not null)
                {
                    if (owner.Stopping.IsCancellationRequested)
                    {
                        opened.Close();
                    }
                    else
                    {
                        Volatile.Write(ref connection, opened);
                    }
                }
            }
        }
    }
}
