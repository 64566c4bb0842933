using System.Buffers;
using System.Net.Sockets;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>
/// One outgoing connection. The thread driving the core serializes messages into a buffer and, once per
/// <see cref="Ready"/>, sends it itself with one non-blocking <c>send</c> — no hand-off, no wake-up of another
/// thread on the latency path. Only when the socket cannot take everything (a slow peer, a large batch) does an async
/// sender take over; while it runs, new messages accumulate and leave together in its next send (coalescing under load).
/// </summary>
internal sealed class PeerConnection
{
    private const int ShrinkAbove = 4 << 20;
    private readonly Socket socket;
    private readonly TlsSealer? sealer;
    private readonly Lock gate = new();
    private ArrayBufferWriter<byte> filling = new(64 * 1024);
    private ArrayBufferWriter<byte> draining = new(64 * 1024);
    private bool senderRunning;

    public PeerConnection(Socket socket, TlsSealer? sealer)
    {
        this.socket = socket;
        this.sealer = sealer;
        socket.Blocking = false;
    }

    public bool Failed { get; private set; }

    /// <summary>
    /// Serializes <paramref name="message"/> unless more than <paramref name="queuedMax"/> bytes already wait for the
    /// socket.
    /// </summary>
    public bool TryWrite(Message message, long queuedMax)
    {
        lock (gate)
        {
            if (filling.WrittenCount + (senderRunning ? draining.WrittenCount + (sealer?.SealedCount ?? 0) : 0) > queuedMax)
            {
                return false;
            }

            WireFormat.Write(filling, message);
            return true;
        }
    }

    public void WriteRaw(ReadOnlySpan<byte> bytes)
    {
        lock (gate)
        {
            filling.Write(bytes);
        }
    }

    /// <summary>Sends what was written (the thread driving the core); returns the async sender when one had to take over.</summary>
    public Task? Flush()
    {
        lock (gate)
        {
            if (senderRunning || filling.WrittenCount == 0 || Failed)
            {
                return null; // the running sender takes it along when its send completes
            }

            senderRunning = true;
        }

        // Write-through: this thread owns the filling buffer until it hands it over below.
        ReadOnlySpan<byte> bytes;
        if (sealer is null)
        {
            bytes = filling.WrittenSpan;
        }
        else
        {
            sealer.Seal(filling.WrittenSpan);
            Reset(ref filling);
            bytes = sealer.Sealed.Span;
        }

        var sent = socket.Send(bytes, SocketFlags.None, out var error);
        if (error is not (SocketError.Success or SocketError.WouldBlock))
        {
            Close();
            return null;
        }

        lock (gate)
        {
            if (error == SocketError.Success && sent == bytes.Length)
            {
                if (sealer is null)
                {
                    Reset(ref filling);
                }
                else
                {
                    sealer.Reset();
                }

                senderRunning = false;
                return null;
            }

            // The socket is full: the rest goes out asynchronously (sealed bytes stay in the sealer).
            if (sealer is null)
            {
                (filling, draining) = (draining, filling);
            }
        }

        return Task.Run(() => DrainAsync(Math.Max(0, sent)));
    }

    public void Close()
    {
        Failed = true;
        socket.Dispose();
        sealer?.Dispose();
    }

    private async Task DrainAsync(int offset)
    {
        try
        {
            while (true)
            {
                var memory = (sealer?.Sealed ?? draining.WrittenMemory)[offset..];
                while (!memory.IsEmpty)
                {
                    var sent = await socket.SendAsync(memory, SocketFlags.None).ConfigureAwait(false);
                    memory = memory[sent..];
                }

                offset = 0;
                lock (gate)
                {
                    if (sealer is null)
                    {
                        Reset(ref draining);
                    }
                    else
                    {
                        sealer.Reset();
                    }

                    if (filling.WrittenCount == 0)
                    {
                        senderRunning = false;
                        return;
                    }

                    (filling, draining) = (draining, filling); // everything written meanwhile, in one send
                }

                if (sealer is not null)
                {
                    sealer.Seal(draining.WrittenSpan); // outside the lock: the core's thread goes on writing meanwhile
                    Reset(ref draining);
                }
            }
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The peer is gone: the next send finds the connection failed and reconnects.
            Close();
        }
    }

    /// <summary>Empties a send buffer; one that a burst grew past 4 MiB is replaced, so it does not pin its peak forever.</summary>
    internal static void Reset(ref ArrayBufferWriter<byte> buffer)
    {
        if (buffer.Capacity > ShrinkAbove)
        {
            buffer = new ArrayBufferWriter<byte>(64 * 1024); // a burst does not pin its peak forever
        }
        else
        {
            buffer.ResetWrittenCount();
        }
    }
}
