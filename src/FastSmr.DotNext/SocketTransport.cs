using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Threading.Channels;
using FastSmr.Security;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace FastSmr.DotNext;

/// <summary>
/// A plain TCP transport for DotNext's <c>CustomTransportConfiguration</c> whose outbound side can dial a peer through a
/// different address than the peer's canonical endpoint. DotNext identifies members by endpoint, so every replica keeps the
/// same canonical member list; only the socket a replica opens towards peer B goes to <c>routes[B]</c> — for the chaos
/// harness, the proxy port of exactly that ordered pair. With TLS, every connection is mutually authenticated: the dialled
/// replica must present the certificate of the member whose endpoint was dialled, and an accepting replica takes only
/// certificates of other members (DotNext's messages carry no id this transport could check against, so a member
/// certificate is the whole identity check here; see native-notes/security.md).
/// </summary>
internal static class SocketTransport
{
    /// <summary>Listens on the replica's endpoint; with <paramref name="tls"/>, admits <paramref name="isPeer"/> members only.</summary>
    internal sealed class ListenerFactory(TlsCredentials? tls, Func<CertificateIdentity, bool> isPeer) : IConnectionListenerFactory
    {
        public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
        {
            var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(endpoint);
                socket.Listen(512);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            IConnectionListener listener = tls is null
                ? new Listener(socket, socket.LocalEndPoint!)
                : new TlsListener(new Listener(socket, socket.LocalEndPoint!), tls, isPeer);
            return ValueTask.FromResult(listener);
        }
    }

    /// <summary>
    /// Dials peers, through <paramref name="routes"/> where one is given for the peer; with <paramref name="tls"/>, requires
    /// the certificate of the member <paramref name="ids"/> names for the endpoint.
    /// </summary>
    internal sealed class RoutedConnectionFactory(
        IReadOnlyDictionary<IPEndPoint, IPEndPoint> routes,
        TlsCredentials? tls,
        IReadOnlyDictionary<EndPoint, ReplicaId> ids
    ) : IConnectionFactory
    {
        public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
        {
            var target = endpoint is IPEndPoint ip && routes.TryGetValue(ip, out var route) ? route : endpoint;
            var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            Stream stream;
            try
            {
                await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
                stream = new NetworkStream(socket, ownsSocket: true);
                if (tls is not null)
                {
                    if (!ids.TryGetValue(endpoint, out var member))
                    {
                        throw new AuthenticationException(endpoint + " is not a member's endpoint");
                    }

                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    timeout.CancelAfter(HandshakeTimeout);
                    stream = await tls.ConnectAsync(stream, member, timeout.Token).ConfigureAwait(false);
                }
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            // The remote endpoint is reported as the canonical one: that is the member DotNext asked for.
            return new SocketConnection(socket, stream, endpoint);
        }
    }

    /// <summary>How long a TLS handshake may take before the connection is closed.</summary>
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Connections handshaking at once on a TLS listener; when full, the oldest is closed, so connections that never
    /// authenticate cannot keep a member out.
    /// </summary>
    private const int HandshakesMax = 16;

    /// <summary>
    /// A listener whose connections DotNext sees only after their TLS handshake: handshakes run concurrently in the
    /// background (bounded, each within <see cref="HandshakeTimeout"/>), so a silent connection never holds up the
    /// accept of a member.
    /// </summary>
    private sealed class TlsListener : IConnectionListener
    {
        private readonly Listener inner;
        private readonly TlsCredentials tls;
        private readonly Func<CertificateIdentity, bool> isPeer;
        private readonly Channel<ConnectionContext> accepted = Channel.CreateBounded<ConnectionContext>(HandshakesMax);
        private readonly CancellationTokenSource stopping = new();
        private readonly List<Socket> handshaking = [];
        private readonly Task acceptLoop;

        public TlsListener(Listener inner, TlsCredentials tls, Func<CertificateIdentity, bool> isPeer)
        {
            this.inner = inner;
            this.tls = tls;
            this.isPeer = isPeer;
            acceptLoop = Task.Run(AcceptLoopAsync);
        }

        public EndPoint EndPoint => inner.EndPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await accepted.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            await inner.UnbindAsync(cancellationToken).ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            await stopping.CancelAsync().ConfigureAwait(false);
            await inner.DisposeAsync().ConfigureAwait(false);
            await acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            while (accepted.Reader.TryRead(out var connection))
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }

            stopping.Dispose();
        }

        private async Task AcceptLoopAsync()
        {
            while (!stopping.IsCancellationRequested && await inner.AcceptSocketAsync(stopping.Token).ConfigureAwait(false) is { } socket)
            {
                Socket? evicted = null;
                lock (handshaking)
                {
                    if (handshaking.Count >= HandshakesMax)
                    {
                        evicted = handshaking[0];
                        handshaking.RemoveAt(0);
                    }

                    handshaking.Add(socket);
                }

                evicted?.Dispose();
                _ = HandshakeAsync(socket);
            }

            accepted.Writer.TryComplete();
        }

        private async Task HandshakeAsync(Socket socket)
        {
            var stream = new NetworkStream(socket, ownsSocket: true);
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stopping.Token);
                timeout.CancelAfter(HandshakeTimeout);
                var (secured, _) = await tls.AcceptAsync(stream, CertificateRole.Member, isPeer, timeout.Token).ConfigureAwait(false);
                var connection = new SocketConnection(socket, secured, socket.RemoteEndPoint);
                if (!accepted.Writer.TryWrite(connection))
                {
                    await connection.DisposeAsync().ConfigureAwait(false); // DotNext is not accepting: stopping
                }
            }
            catch (Exception e)
                when (e
                        is AuthenticationException
                            or IOException
                            or SocketException
                            or OperationCanceledException
                            or ObjectDisposedException
                )
            {
                // Not a member, too slow, or evicted: the connection is closed and forgotten.
                await stream.DisposeAsync().ConfigureAwait(false);
            }
            finally
            {
                lock (handshaking)
                {
                    handshaking.Remove(socket);
                }
            }
        }
    }

    private sealed class Listener(Socket socket, EndPoint endPoint) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = endPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default) =>
            await AcceptSocketAsync(cancellationToken).ConfigureAwait(false) is { } accepted
                ? new SocketConnection(accepted, new NetworkStream(accepted, ownsSocket: true), accepted.RemoteEndPoint)
                : null;

        /// <summary>The next connection; null once the listener is closed.</summary>
        public async ValueTask<Socket?> AcceptSocketAsync(CancellationToken cancellationToken)
        {
            while (true)
            {
                try
                {
                    var accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    accepted.NoDelay = true;
                    return accepted;
                }
                catch (ObjectDisposedException)
                {
                    return null;
                }
                catch (OperationCanceledException)
                {
                    return null;
                }
                catch (SocketException e) when (e.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted)
                {
                    return null;
                }
                catch (SocketException)
                {
                    // A connection reset before it was accepted, or descriptors exhausted for a moment: DotNext stops
                    // listening for good on any error, so keep accepting (after a pause, bounded by cancellation).
                    await Task.Delay(50, cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                }
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            socket.Close();
            return ValueTask.CompletedTask;
        }

        public ValueTask DisposeAsync()
        {
            socket.Dispose();
            return ValueTask.CompletedTask;
        }
    }

    private sealed class SocketConnection : ConnectionContext, IDuplexPipe
    {
        private static long nextId;
        private readonly Socket socket;
        private readonly Stream stream;
        private readonly CancellationTokenSource closed = new();
        private int disposed;

        internal SocketConnection(Socket socket, Stream stream, EndPoint? remote)
        {
            this.socket = socket;
            this.stream = stream;
            Input = PipeReader.Create(stream, new StreamPipeReaderOptions(leaveOpen: true));
            Output = PipeWriter.Create(stream, new StreamPipeWriterOptions(leaveOpen: true));
            RemoteEndPoint = remote;
            LocalEndPoint = socket.LocalEndPoint;
            ConnectionClosed = closed.Token;
            ConnectionId = "fastsmr-peer-" + Interlocked.Increment(ref nextId).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        public PipeReader Input { get; }

        public PipeWriter Output { get; }

        public override string ConnectionId { get; set; }

        public override IFeatureCollection Features { get; } = new FeatureCollection();

        public override IDictionary<object, object?> Items { get; set; } = new ConcurrentDictionary<object, object?>();

        public override IDuplexPipe Transport
        {
            get => this;
            set => throw new NotSupportedException();
        }

        public override void Abort(ConnectionAbortedException abortReason)
        {
            try
            {
                socket.Shutdown(SocketShutdown.Both);
            }
            catch (SocketException) { }
            catch (ObjectDisposedException) { }

            Cancel();
        }

        public override async ValueTask DisposeAsync()
        {
            if (Interlocked.Exchange(ref disposed, 1) != 0)
            {
                await base.DisposeAsync().ConfigureAwait(false);
                return;
            }

            Cancel();
            try
            {
                await Input.CompleteAsync().ConfigureAwait(false);
                await Output.CompleteAsync().ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The peer is gone; whatever was buffered for it is dropped, as on any broken connection.
            }
            catch (ObjectDisposedException) { }

            await stream.DisposeAsync().ConfigureAwait(false);
            closed.Dispose();
            await base.DisposeAsync().ConfigureAwait(false);
        }

        private void Cancel()
        {
            try
            {
                closed.Cancel();
            }
            catch (ObjectDisposedException) { }
        }
    }
}
