using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text;
using System.Threading.Channels;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Security;
using Microsoft.Extensions.Logging;

namespace FastSmr.Server;

/// <summary>
/// One client connection: a read loop that parses frames in place and hands commands to the engine, and a write loop
/// that drains every ready reply and flushes once, so replies to a pipelined client leave in few syscalls.
/// </summary>
/// <remarks>
/// Limits: frame bodies above the command limit, unknown frame types, a first frame other than Hello, or a wrong
/// cluster id or protocol version are protocol errors: the session sends an Error frame and closes. More than
/// <see cref="ServerOptions.InFlightPerConnectionMax"/> requests in flight are answered Busy.
/// Concurrency profile: one reader task, one writer task, completions from any thread through the reply channel.
/// </remarks>
internal sealed partial class ClientSession
{
    private readonly Socket socket;
    private readonly ReplicaServer server;
    private readonly ILogger logger;
    private PipeReader input = null!; // set once the connection is open (after the TLS handshake)
    private PipeWriter output = null!;
    private string? remoteName;
    private uint owner; // the client number in the client's certificate (0 without TLS): every record must carry it
    private readonly Channel<ServerReply> replies;
    private readonly int bodyLengthMax;
    private readonly long openedAt;
    private int inFlight;
    private long unsentBytes; // replies queued or being flushed, against ServerOptions.ConnectionOutputBytesMax
    private long lastReadAt; // when bytes last arrived (monotonic timestamp)
    private volatile bool greeted;
    private CancellationTokenSource? session;

    /// <summary>How often a session checks its Hello and idle deadlines (their resolution).</summary>
    private static readonly TimeSpan DeadlineCheckInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long the session waits for a client that does not read its replies before closing it.</summary>
    private static readonly TimeSpan WriteStallMax = TimeSpan.FromSeconds(10);

    public ClientSession(Socket socket, ReplicaServer server, ILogger logger)
    {
        this.socket = socket;
        this.server = server;
        this.logger = logger;
        replies = Channel.CreateUnbounded<ServerReply>(new UnboundedChannelOptions { SingleReader = true });
        bodyLengthMax = BatchFormat.RecordHeaderSize + server.Engine.Options.CommandBytesMax;
        openedAt = lastReadAt = server.Time.GetTimestamp();
    }

    public async Task RunAsync(CancellationToken token)
    {
        // Cancelled by the server's shutdown or when the writer stops (socket gone): the reader must not outlive it.
        using var session = CancellationTokenSource.CreateLinkedTokenSource(token);
        this.session = session;
        using var deadlines = server.Time.CreateTimer(_ => CheckDeadlines(), null, DeadlineCheckInterval, DeadlineCheckInterval);
        if (await OpenAsync(session.Token).ConfigureAwait(false) is not { } stream)
        {
            socket.Dispose();
            return;
        }

        input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4096));
        output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
        var writer = Task.Run(() => WriteLoopAsync(session), CancellationToken.None);
        try
        {
            await ReadLoopAsync(session.Token).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            if (server.MayWarnAboutClient())
            {
                ServerLog.ProtocolViolation(logger, RemoteName(), e.Message);
            }

            Enqueue(new ServerReply(FrameType.Error, 0, SubmitResult.FromStatus(SubmitStatus.ProtocolError), e.Message));
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }
        finally
        {
            replies.Writer.TryComplete();
        }

        // Let the writer send what is ready (answers in flight, an error frame) within a bound; then abort the socket,
        // which fails a flush that a client who does not read would otherwise block forever.
        await writer.WaitAsync(WriteStallMax, CancellationToken.None).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        socket.Dispose();
        await writer.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        try
        {
            await input.CompleteAsync().ConfigureAwait(false);
            await output.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
        {
            // The socket is already closed; unflushed bytes had nowhere to go.
        }
    }

    /// <summary>
    /// The connection's stream: with TLS, after a handshake that requires a client certificate of this cluster (within
    /// the Hello deadline, which <see cref="CheckDeadlines"/> enforces); null when the client is refused or gone.
    /// </summary>
    private async Task<Stream?> OpenAsync(CancellationToken token)
    {
        _ = RemoteName(); // before a failed handshake closes the socket
        var stream = new NetworkStream(socket, ownsSocket: true);
        if (server.Tls is not { } tls)
        {
            return stream;
        }

        try
        {
            var (secured, identity) = await tls.AcceptAsync(stream, CertificateRole.Client, null, token).ConfigureAwait(false);
            owner = identity.Number;
            return secured;
        }
        catch (AuthenticationException e)
        {
            if (server.MayWarnAboutClient())
            {
                ServerLog.ProtocolViolation(logger, RemoteName(), "TLS: " + e.Message);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException) { }

        return null;
    }

    /// <summary>The client's address, read once while the socket is open (a failed handshake closes it).</summary>
    private string RemoteName() => remoteName ??= RemoteNameOf(socket);

    private static string RemoteNameOf(Socket socket)
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

    /// <summary>Whether a Submit's record carries this connection's owner in its client id (always, without TLS).</summary>
    private bool Owns(ReadOnlySequence<byte> record)
    {
        if (owner == 0 || record.Length < BatchFormat.RecordHeaderSize)
        {
            return true; // the engine refuses a short record itself
        }

        Span<byte> clientId = stackalloc byte[8];
        record.Slice(8, 8).CopyTo(clientId);
        return (uint)(System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(clientId) >> 32) == owner;
    }

    private async Task ReadLoopAsync(CancellationToken token)
    {
        while (true)
        {
            var read = await input.ReadAsync(token).ConfigureAwait(false);
            Volatile.Write(ref lastReadAt, server.Time.GetTimestamp());
            var buffer = read.Buffer;
            try
            {
                while (FrameCodec.TryReadFrame(ref buffer, bodyLengthMax, out var header, out var body))
                {
                    if (!greeted)
                    {
                        Greet(header, body);
                        greeted = true;
                        continue;
                    }

                    if (Volatile.Read(ref inFlight) >= 2 * server.Options.InFlightPerConnectionMax)
                    {
                        // Back-pressure: stop reading until the writer has sent enough replies (TCP then slows the client).
                        await WaitForRepliesAsync(token).ConfigureAwait(false);
                    }

                    Dispatch(header, body);
                }
            }
            finally
            {
                input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (read.IsCompleted)
            {
                if (!buffer.IsEmpty)
                {
                    throw new ProtocolException("connection closed in the middle of a frame");
                }

                return;
            }
        }
    }

    /// <summary>
    /// Once a second: closes a connection that sent no Hello within <see cref="ServerOptions.ClientHelloTimeoutMs"/>, or
    /// that stayed silent with nothing in flight for <see cref="ServerOptions.ClientIdleTimeoutMs"/>, so that idle
    /// connections cannot hold every slot of <see cref="ServerOptions.ConnectionsMax"/>.
    /// </summary>
    private void CheckDeadlines()
    {
        var options = server.Options;
        if (!greeted && server.Time.GetElapsedTime(openedAt).TotalMilliseconds > options.ClientHelloTimeoutMs)
        {
            Close("no Hello within " + options.ClientHelloTimeoutMs + " ms");
        }
        else if (
            greeted
            && options.ClientIdleTimeoutMs > 0
            && Volatile.Read(ref inFlight) == 0
            && server.Time.GetElapsedTime(Volatile.Read(ref lastReadAt)).TotalMilliseconds > options.ClientIdleTimeoutMs
        )
        {
            Close("idle for " + options.ClientIdleTimeoutMs + " ms");
        }
    }

    /// <summary>Closes the connection (once), logging why.</summary>
    private void Close(string reason)
    {
        var current = session;
        if (current is null || current.IsCancellationRequested)
        {
            return;
        }

        if (server.MayWarnAboutClient())
        {
            ServerLog.ClientClosed(logger, RemoteName(), reason);
        }

        try
        {
            current.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // The session ended meanwhile.
        }
    }

    private void Greet(FrameHeader header, ReadOnlySequence<byte> body)
    {
        if (header.Type != FrameType.Hello)
        {
            throw new ProtocolException("the first frame must be Hello");
        }

        Span<byte> bytes = stackalloc byte[FrameCodec.HelloSize];
        if (body.Length != FrameCodec.HelloSize)
        {
            throw new ProtocolException("malformed hello");
        }

        body.CopyTo(bytes);
        var (version, clusterId) = FrameCodec.ReadHello(bytes);
        if (version != FrameCodec.ProtocolVersion)
        {
            throw new ProtocolException(
                "unsupported protocol version " + version.ToString(System.Globalization.CultureInfo.InvariantCulture)
            );
        }

        if (clusterId != server.Options.ClusterId)
        {
            throw new ProtocolException("wrong cluster id " + clusterId.ToString("x", System.Globalization.CultureInfo.InvariantCulture));
        }

        Enqueue(new ServerReply(FrameType.HelloReply, header.RequestId, SubmitResult.FromStatus(SubmitStatus.Ok)));
    }

    private void Dispatch(FrameHeader header, ReadOnlySequence<byte> body)
    {
        var replyType = header.Type switch
        {
            FrameType.Submit => FrameType.SubmitReply,
            FrameType.Read => FrameType.ReadReply,
            FrameType.Status => FrameType.StatusReply,
            _ => throw new ProtocolException("unexpected frame type " + header.Type.ToString()),
        };

        // Every request holds a slot until its reply is written, Busy answers included, so a client that sends without
        // reading cannot make the reply queue grow: past the limit it gets Busy, past twice the limit reading stops.
        var count = Interlocked.Increment(ref inFlight);
        if (count > server.Options.InFlightPerConnectionMax)
        {
            Reply(replyType, header.RequestId, SubmitResult.FromStatus(SubmitStatus.Busy));
            return;
        }

        var timeout = header.TimeoutMicros == 0 ? TimeSpan.Zero : TimeSpan.FromMicroseconds(header.TimeoutMicros);
        switch (header.Type)
        {
            case FrameType.Submit
                when server.InjectedBug == InjectedBug.AckWithoutAppend && Interlocked.Increment(ref server.InjectedCounter) % 5 == 0:
                // TEST ONLY (fastsmr chaos --inject-bug): claim success for a command that was never appended.
                Reply(replyType, header.RequestId, SubmitResult.FromOutput([0]));
                return;
            case FrameType.Submit when !Owns(body):
                // With TLS the client id's upper half is the certificate's client number: no client writes as another.
                Reply(replyType, header.RequestId, SubmitResult.FromStatus(SubmitStatus.Rejected));
                return;
            case FrameType.Submit:
                Track(replyType, header.RequestId, server.Engine.SubmitRecordAsync(body, timeout));
                return;
            case FrameType.Status when !server.TryTakeStatusToken():
                Reply(replyType, header.RequestId, SubmitResult.FromStatus(SubmitStatus.Busy));
                return;
            case FrameType.Read when header.Flags > (byte)ReadConsistency.Local:
                Reply(replyType, header.RequestId, SubmitResult.FromStatus(SubmitStatus.Rejected));
                return;
            case FrameType.Read when server.InjectedBug == InjectedBug.StaleRead:
                // TEST ONLY: answer a linearizable read from this replica's local state, leader or not, without a barrier.
                Track(replyType, header.RequestId, server.Engine.ReadAsync(body.ToArray(), ReadConsistency.Local, timeout));
                return;
            case FrameType.Read:
                Track(replyType, header.RequestId, server.Engine.ReadAsync(body.ToArray(), (ReadConsistency)header.Flags, timeout));
                return;
            default:
                Reply(replyType, header.RequestId, default);
                return;
        }
    }

    private async Task WaitForRepliesAsync(CancellationToken token)
    {
        var bound = 2 * server.Options.InFlightPerConnectionMax;
        var started = server.Time.GetTimestamp();
        while (Volatile.Read(ref inFlight) >= bound)
        {
            if (server.Time.GetElapsedTime(started) > WriteStallMax)
            {
                throw new ProtocolException(
                    "the client has not read its replies for "
                        + WriteStallMax.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)
                        + " s"
                );
            }

            await Task.Delay(TimeSpan.FromMilliseconds(1), server.Time, token).ConfigureAwait(false);
        }
    }
}
