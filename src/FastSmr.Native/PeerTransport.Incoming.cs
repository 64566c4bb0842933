using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using FastSmr.Raft;
using FastSmr.Security;
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
            Socket? evicted = null;
            lock (incoming)
            {
                // Connections not yet past their hello (and TLS handshake) hold a bounded pool; when it is full the
                // oldest is closed, so connections that never authenticate cannot keep a member out for long.
                if (pending.Count >= PendingConnectionsMax)
                {
                    evicted = pending[0];
                    pending.RemoveAt(0);
                }

                incoming.Add(socket);
                pending.Add(socket);
            }

            if (evicted is not null)
            {
                LogRefused(Remote(evicted), "closed before its hello: " + PendingConnectionsMax + " newer connections wait");
                evicted.Dispose();
            }

            Track(Task.Run(() => ReceiveAsync(socket, token), CancellationToken.None));
        }
    }

    private async Task ReceiveAsync(Socket socket, CancellationToken token)
    {
        var remote = Remote(socket);
        Stream stream = new NetworkStream(socket, ownsSocket: false);
        PipeReader? reader = null;
        (byte Kind, int From)? admitted = null;
        try
        {
            using (var deadline = CancellationTokenSource.CreateLinkedTokenSource(token))
            {
                deadline.CancelAfter(HelloTimeout); // the TLS handshake and the hello, together
                ReplicaId? certified = null;
                if (options.Tls is { } tls)
                {
                    var (secured, identity) = await tls.AcceptAsync(stream, CertificateRole.Member, IsPeer, deadline.Token)
                        .ConfigureAwait(false);
                    stream = secured;
                    certified = new ReplicaId(identity.Number);
                }

                reader = PipeReader.Create(stream, ReaderOptions);
                if (await ReadHelloAsync(reader, remote, certified, deadline.Token).ConfigureAwait(false) is not { } hello)
                {
                    return;
                }

                admitted = Admit(socket, hello.Kind, hello.From) ? (hello.Kind, hello.From) : null;
                if (admitted is { Kind: WireFormat.KindMessages })
                {
                    Greeted?.Invoke(hello.From, hello.Fresh);
                }
            }

            if (admitted is not { } connection)
            {
                LogRefused(remote, "more than " + SnapshotReceptionsMax + " snapshot connections from one peer");
            }
            else if (connection.Kind == WireFormat.KindMessages)
            {
                await ReceiveMessagesAsync(reader, connection.From, token).ConfigureAwait(false);
            }
            else
            {
                await ReceiveSnapshotAsync(reader, connection.From, token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is InvalidDataException or AuthenticationException)
        {
            LogRefused(remote, e.Message);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer went away, did not finish its handshake in time, or we are stopping: a peer reconnects on its own.
        }
        finally
        {
            if (reader is not null)
            {
                await reader.CompleteAsync().ConfigureAwait(false);
            }

            await stream.DisposeAsync().ConfigureAwait(false);
            Forget(socket, admitted);
        }
    }

    /// <summary>Logs a refused connection within the budget (<see cref="Engine.LogBudget"/>): a flood is counted.</summary>
    private void LogRefused(string remote, string reason)
    {
        if (refusalLog.TryTake(out var skipped))
        {
            if (skipped > 0)
            {
                NativeLog.PeerRefusalsSuppressed(logger, skipped);
            }

            NativeLog.PeerRefused(logger, remote, reason);
        }
    }

    private bool IsPeer(CertificateIdentity identity) => identity.Number != self && links.ContainsKey((int)identity.Number);

    private static string Remote(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint?.ToString() ?? "?";
        }
        catch (ObjectDisposedException)
        {
            return "?";
        }
    }

    /// <summary>
    /// Admits a connection past its hello: a peer's message connection replaces its older one (the peer reconnected,
    /// perhaps across a partition that left the old one half-open; with TLS only the holder of that member's certificate
    /// can); snapshot connections are bounded per peer. False when the connection is refused.
    /// </summary>
    private bool Admit(Socket socket, byte kind, int from)
    {
        Socket? replaced = null;
        lock (incoming)
        {
            pending.Remove(socket);
            if (kind == WireFormat.KindMessages)
            {
                latestFrom.TryGetValue(from, out replaced);
                latestFrom[from] = socket;
            }
            else
            {
                var streams = snapshotStreamsFrom.GetValueOrDefault(from);
                if (streams >= SnapshotReceptionsMax)
                {
                    return false;
                }

                snapshotStreamsFrom[from] = streams + 1;
            }
        }

        replaced?.Dispose();
        return true;
    }

    /// <summary>
    /// Reads the hello; the sender's kind of connection and id, or null (the connection is then closed) when it is short,
    /// of another cluster, from a replica that is not a peer, or (with TLS) from another replica than the certificate's.
    /// </summary>
    private async Task<(byte Kind, int From, bool Fresh)?> ReadHelloAsync(
        PipeReader reader,
        string remote,
        ReplicaId? certified,
        CancellationToken token
    )
    {
        var hello = await reader.ReadAtLeastAsync(WireFormat.HelloSize, token).ConfigureAwait(false);
        if (hello.Buffer.Length < WireFormat.HelloSize)
        {
            return null;
        }

        var helloBytes = hello.Buffer.Slice(0, WireFormat.HelloSize).ToArray();
        reader.AdvanceTo(hello.Buffer.GetPosition(WireFormat.HelloSize));
        var refused = WireFormat.ReadHello(helloBytes, options.ClusterId, out var kind, out var from, out var flags);
        if (refused is null && (from == self || !links.ContainsKey(from)))
        {
            refused = "replica " + from + " is not a peer of this replica";
        }

        if (refused is null && certified is { } id && id.Value != (uint)from)
        {
            refused = "the hello claims replica " + from + " but the certificate is member-" + id.ToString();
        }

        if (refused is not null)
        {
            LogRefused(remote, refused);
            return null;
        }

        return (kind, from, (flags & WireFormat.HelloFresh) != 0);
    }

    /// <summary>Closes an incoming connection and forgets it (and, if it was a peer's current message connection, that too).</summary>
    private void Forget(Socket socket, (byte Kind, int From)? admitted)
    {
        lock (incoming)
        {
            incoming.Remove(socket);
            pending.Remove(socket);
            if (admitted is { Kind: WireFormat.KindMessages, From: var from })
            {
                if (latestFrom.TryGetValue(from, out var latest) && ReferenceEquals(latest, socket))
                {
                    latestFrom.Remove(from);
                }
            }
            else if (admitted is { From: var streamer })
            {
                snapshotStreamsFrom[streamer]--;
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
