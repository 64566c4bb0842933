using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using FastSmr.Raft;
using Microsoft.Extensions.Logging;

namespace FastSmr.Native;

// The incoming side: accepting peer connections (bounded, hello within a deadline, one message connection per peer) and
// reading their messages into the core.
internal sealed partial class PeerTransport
{
    private async Task AcceptLoopAsync()
    {
        var token = stopping.Token;
        while (!token.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await listener!.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (token.IsCancellationRequested)
                {
                    return;
                }

                await Task.Delay(AcceptBackOff, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            socket.NoDelay = true;
            lock (incoming)
            {
                if (incoming.Count >= IncomingConnectionsMax)
                {
                    socket.Dispose();
                    continue;
                }

                incoming.Add(socket);
            }

            Track(Task.Run(() => ReceiveAsync(socket, token), CancellationToken.None));
        }
    }

    private async Task ReceiveAsync(Socket socket, CancellationToken token)
    {
        var remote = socket.RemoteEndPoint?.ToString() ?? "?";
        var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = PipeReader.Create(stream, ReaderOptions);
        try
        {
            if (await ReadHelloAsync(reader, remote, token).ConfigureAwait(false) is not { } hello)
            {
                return;
            }

            var (kind, from) = hello;

            if (kind == WireFormat.KindMessages)
            {
                // One message connection per peer: a newer one (the peer reconnected, perhaps across a partition that
                // left the old one half-open) replaces the older.
                Socket? replaced;
                lock (incoming)
                {
                    latestFrom.TryGetValue(from, out replaced);
                    latestFrom[from] = socket;
                }

                replaced?.Dispose();
                await ReceiveMessagesAsync(reader, from, token).ConfigureAwait(false);
            }
            else
            {
                await ReceiveSnapshotAsync(reader, from, token).ConfigureAwait(false);
            }
        }
        catch (InvalidDataException e)
        {
            NativeLog.PeerRefused(logger, remote, e.Message);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer went away or we are stopping: it reconnects on its own.
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await stream.DisposeAsync().ConfigureAwait(false);
            Forget(socket);
        }
    }

    /// <summary>
    /// Reads the hello within <see cref="HelloTimeout"/>; the sender's kind of connection and id, or null (the connection
    /// is then closed) when it is short, of another cluster, or from a replica that is not a peer.
    /// </summary>
    private async Task<(byte Kind, int From)?> ReadHelloAsync(PipeReader reader, string remote, CancellationToken token)
    {
        ReadResult hello;
        using (var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(token))
        {
            helloTimeout.CancelAfter(HelloTimeout);
            hello = await reader.ReadAtLeastAsync(WireFormat.HelloSize, helloTimeout.Token).ConfigureAwait(false);
        }

        if (hello.Buffer.Length < WireFormat.HelloSize)
        {
            return null;
        }

        var helloBytes = hello.Buffer.Slice(0, WireFormat.HelloSize).ToArray();
        reader.AdvanceTo(hello.Buffer.GetPosition(WireFormat.HelloSize));
        var refused = WireFormat.ReadHello(helloBytes, options.ClusterId, out var kind, out var from);
        if (refused is null && (from == self || !links.ContainsKey(from)))
        {
            refused = "replica " + from + " is not a peer of this replica";
        }

        if (refused is not null)
        {
            NativeLog.PeerRefused(logger, remote, refused);
            return null;
        }

        return (kind, from);
    }

    /// <summary>Closes an incoming connection and forgets it (and, if it was a peer's current message connection, that too).</summary>
    private void Forget(Socket socket)
    {
        lock (incoming)
        {
            incoming.Remove(socket);
            foreach (var (peer, latest) in latestFrom)
            {
                if (ReferenceEquals(latest, socket))
                {
                    latestFrom.Remove(peer);
                    break;
                }
            }
        }

        socket.Dispose();
    }

    private async Task ReceiveMessagesAsync(PipeReader reader, int from, CancellationToken token)
    {
        // While part of a frame is buffered, the next bytes must come within StallMax (see there).
        using var stall = new Stall(token);
        while (true)
        {
            var result = await stall.ReadAsync(reader).ConfigureAwait(false);
            var buffer = result.Buffer;
            var now = Clock.NowUs();
            while (WireFormat.TryRead(ref buffer, out var message))
            {
                if (message!.From != new ReplicaId((uint)from))
                {
                    throw new InvalidDataException("a message from replica " + message.From + " on replica " + from + "'s connection");
                }

                received(message, now);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            stall.Arm(partial: !buffer.IsEmpty);
            receivedBatch(); // once per read: everything that arrived together is stepped together
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    /// <summary>
    /// A deadline that runs only while a partial frame is buffered: the token to read with is cancelled when
    /// <see cref="StallMax"/> passes without progress. Costs nothing while every read ends on a frame boundary.
    /// </summary>
    private sealed class Stall(CancellationToken token) : IDisposable
    {
        private CancellationTokenSource? deadline;

        /// <summary>The token the next read waits with.</summary>
        public CancellationToken Token => deadline?.Token ?? token;

        /// <summary>After a read: a partial frame (re)starts the deadline, a frame boundary removes it.</summary>
        public void Arm(bool partial)
        {
            if (!partial)
            {
                deadline?.Dispose();
                deadline = null;
                return;
            }

            deadline ??= CancellationTokenSource.CreateLinkedTokenSource(token);
            deadline.CancelAfter(StallMax); // progress moves the deadline on
        }

        /// <summary>
        /// Reads with the deadline; a read it cancelled is reported as damage, so that the peer is logged. Without a
        /// partial frame this is the pipe's own read: the hot path pays for no extra state machine.
        /// </summary>
        public ValueTask<ReadResult> ReadAsync(PipeReader reader) =>
            deadline is null ? reader.ReadAsync(token) : ReadWithDeadlineAsync(reader);

        private async ValueTask<ReadResult> ReadWithDeadlineAsync(PipeReader reader)
        {
            try
            {
                return await reader.ReadAsync(Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (Expired)
            {
                throw new InvalidDataException("no progress for " + StallMax.TotalSeconds + " s in the middle of a frame");
            }
        }

        /// <summary>Whether the read was cancelled by this deadline rather than by stopping.</summary>
        public bool Expired => deadline is { IsCancellationRequested: true } && !token.IsCancellationRequested;

        public void Dispose() => deadline?.Dispose();
    }
}
