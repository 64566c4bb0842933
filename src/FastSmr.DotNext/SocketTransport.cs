using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace FastSmr.DotNext;

/// <summary>
/// A plain TCP transport for DotNext's <c>CustomTransportConfiguration</c> whose outbound side can dial a peer through a
/// different address than the peer's canonical endpoint. DotNext identifies members by endpoint, so every replica keeps the
/// same canonical member list; only the socket a replica opens towards peer B goes to <c>routes[B]</c> — for the chaos
/// harness, the proxy port of exactly that ordered pair.
/// </summary>
internal static class SocketTransport
{
    /// <summary>Listens on the replica's own endpoint.</summary>
    internal sealed class ListenerFactory : IConnectionListenerFactory
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

            return ValueTask.FromResult<IConnectionListener>(new Listener(socket, socket.LocalEndPoint!));
        }
    }

    /// <summary>Dials peers, through <paramref name="routes"/> where one is given for the peer.</summary>
    internal sealed class RoutedConnectionFactory(IReadOnlyDictionary<IPEndPoint, IPEndPoint> routes) : IConnectionFactory
    {
        public async ValueTask<ConnectionContext> ConnectAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
        {
            var target = endpoint is IPEndPoint ip && routes.TryGetValue(ip, out var route) ? route : endpoint;
            var socket = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            // The remote endpoint is reported as the canonical one: that is the member DotNext asked for.
            return new SocketConnection(socket, endpoint);
        }
    }

    private sealed class Listener(Socket socket, EndPoint endPoint) : IConnectionListener
    {
        public EndPoint EndPoint { get; } = endPoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            while (true)
            {
                try
                {
                    var accepted = await socket.AcceptAsync(cancellationToken).ConfigureAwait(false);
                    accepted.NoDelay = true;
                    return new SocketConnection(accepted, accepted.RemoteEndPoint);
                }
                catch (ObjectDisposedException)
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
                    await Task.Delay(50, cancellationToken).ConfigureAwait(false);
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
        private readonly NetworkStream stream;
        private readonly CancellationTokenSource closed = new();
        private int disposed;

        internal SocketConnection(Socket socket, EndPoint? remote)
        {
            this.socket = socket;
            stream = new NetworkStream(socket, ownsSocket: true);
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
