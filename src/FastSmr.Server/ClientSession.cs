using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading.Channels;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
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
internal sealed class ClientSession
{
    private readonly Socket socket;
    private readonly ReplicaServer server;
    private readonly ILogger logger;
    private readonly PipeReader input;
    private readonly PipeWriter output;
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
        var stream = new NetworkStream(socket, ownsSocket: true);
        input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024, minimumReadSize: 4096));
        output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
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
        var writer = Task.Run(() => WriteLoopAsync(session), CancellationToken.None);
        try
        {
            await ReadLoopAsync(session.Token).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            ServerLog.ProtocolViolation(logger, socket.RemoteEndPoint?.ToString() ?? "?", e.Message);
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

        ServerLog.ClientClosed(logger, socket.RemoteEndPoint?.ToString() ?? "?", reason);
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

    private void Track(FrameType replyType, ulong requestId, ValueTask<SubmitResult> pending)
    {
        if (pending.IsCompletedSuccessfully)
        {
            Reply(replyType, requestId, pending.Result);
            return;
        }

        // A pooled continuation instead of an async method: no Task or state machine is allocated per request.
        PendingReply.Rent().Start(this, replyType, requestId, pending);
    }

    /// <summary>Waits for one request's outcome and queues its reply; pooled, so a request allocates no continuation.</summary>
    private sealed class PendingReply
    {
        private static readonly ConcurrentQueue<PendingReply> Pool = new();
        private static int pooled;
        private readonly Action onCompleted;
        private ClientSession? session;
        private FrameType replyType;
        private ulong requestId;
        private ConfiguredValueTaskAwaitable<SubmitResult>.ConfiguredValueTaskAwaiter awaiter;

        private PendingReply() => onCompleted = OnCompleted;

        public static PendingReply Rent()
        {
            if (Pool.TryDequeue(out var reply))
            {
                Interlocked.Decrement(ref pooled);
                return reply;
            }

            return new PendingReply();
        }

        public void Start(ClientSession owner, FrameType type, ulong id, ValueTask<SubmitResult> pending)
        {
            session = owner;
            replyType = type;
            requestId = id;
            awaiter = pending.ConfigureAwait(false).GetAwaiter();
            awaiter.UnsafeOnCompleted(onCompleted);
        }

        private void OnCompleted()
        {
            var owner = session!;
            var type = replyType;
            var id = requestId;
            SubmitResult result;
            try
            {
                result = awaiter.GetResult();
            }
#pragma warning disable CA1031 // The client must get an answer whatever went wrong inside.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ServerLog.RequestFailed(owner.logger, e);
                result = SubmitResult.FromStatus(SubmitStatus.Unknown);
            }

            session = null;
            awaiter = default;
            if (Interlocked.Increment(ref pooled) <= 4_096)
            {
                Pool.Enqueue(this);
            }
            else
            {
                Interlocked.Decrement(ref pooled);
            }

            owner.Reply(type, id, result);
        }
    }

    /// <summary>Queues a reply to a counted request; its slot is released once the writer has written it.</summary>
    private void Reply(FrameType type, ulong requestId, SubmitResult result) => Enqueue(new ServerReply(type, requestId, result));

    /// <summary>Queues a reply for the writer, counting it against the connection's output budget.</summary>
    private void Enqueue(ServerReply reply)
    {
        var result = reply.Result;
        var unsent = Interlocked.Add(ref unsentBytes, SizeOf(reply));
        if (!replies.Writer.TryWrite(reply))
        {
            result.Dispose(); // connection gone
            return;
        }

        if (unsent > server.Options.ConnectionOutputBytesMax)
        {
            Close(unsent + " bytes of replies unsent, more than ConnectionOutputBytesMax: the client does not read them");
        }
    }

    /// <summary>The most bytes <see cref="Write"/> puts on the wire for <paramref name="reply"/>.</summary>
    private static long SizeOf(in ServerReply reply) =>
        FrameCodec.HeaderSize
        + reply.Type switch
        {
            FrameType.HelloReply => FrameCodec.HelloReplySize,
            FrameType.StatusReply => FrameCodec.StatusReplySize,
            FrameType.Error => 1_024,
            _ => Math.Max(reply.Result.Output.Length, FrameCodec.NotLeaderSizeMax),
        };

    private async Task WriteLoopAsync(CancellationTokenSource session)
    {
        var token = session.Token;
        var reader = replies.Reader;
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                var close = false;
                long written = 0;
                while (reader.TryRead(out var reply))
                {
                    close |= reply.Type == FrameType.Error;
                    written += SizeOf(reply);
                    Write(reply);
                }

                var flush = await output.FlushAsync(token).ConfigureAwait(false);
                Interlocked.Add(ref unsentBytes, -written);
                if (close || flush.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e)
            when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        { }
        finally
        {
            // Nothing more will be written: stop the reader too (it may be waiting for replies to drain).
            try
            {
                await session.CancelAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException) { }

            // Return the pooled outputs of replies nobody will send.
            while (reader.TryRead(out var dropped))
            {
                dropped.Result.Dispose();
            }
        }
    }

    private void Write(ServerReply reply)
    {
        using var result = reply.Result;
        switch (reply.Type)
        {
            case FrameType.HelloReply:
                Span<byte> hello = stackalloc byte[FrameCodec.HelloReplySize];
                FrameCodec.WriteHelloReply(hello, server.Options.Id, server.Options.ClusterId);
                FrameCodec.WriteFrame(output, FrameType.HelloReply, 0, SubmitStatus.Ok, reply.RequestId, 0, hello);
                return;
            case FrameType.StatusReply when result.Status == SubmitStatus.Busy:
                FrameCodec.WriteFrame(output, FrameType.StatusReply, 0, SubmitStatus.Busy, reply.RequestId, 0, default);
                Interlocked.Decrement(ref inFlight);
                return;
            case FrameType.StatusReply:
                Span<byte> status = stackalloc byte[FrameCodec.StatusReplySize];
                FrameCodec.WriteStatus(
                    status,
                    server.Engine.GetStatus() with
                    {
                        ProcessAllocatedBytes = GC.GetTotalAllocatedBytes(precise: true),
                    }
                );
                FrameCodec.WriteFrame(output, FrameType.StatusReply, 0, SubmitStatus.Ok, reply.RequestId, 0, status);
                Interlocked.Decrement(ref inFlight);
                return;
            case FrameType.Error:
                var text = Encoding.UTF8.GetBytes(reply.Text ?? "protocol error");
                FrameCodec.WriteFrame(
                    output,
                    FrameType.Error,
                    0,
                    SubmitStatus.ProtocolError,
                    reply.RequestId,
                    0,
                    text.AsSpan(0, Math.Min(text.Length, 1024))
                );
                return;
            default:
                if (result.Status == SubmitStatus.NotLeader)
                {
                    Span<byte> notLeader = stackalloc byte[FrameCodec.NotLeaderSizeMax];
                    var length = FrameCodec.WriteNotLeader(notLeader, result.LeaderId, server.ClientEndPointOf(result.LeaderId));
                    FrameCodec.WriteFrame(output, reply.Type, 0, result.Status, reply.RequestId, 0, notLeader[..length]);
                }
                else
                {
                    FrameCodec.WriteFrame(output, reply.Type, 0, result.Status, reply.RequestId, 0, result.Output.Span);
                }

                Interlocked.Decrement(ref inFlight);
                return;
        }
    }
}
