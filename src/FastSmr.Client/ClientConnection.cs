using System.Buffers;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Threading.Channels;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Security;

namespace FastSmr.Client;

/// <summary>
/// One TCP connection to a replica: requests are queued to a writer task that writes everything ready and flushes once
/// (pipelining without a syscall per request); a reader task matches replies to requests by request id.
/// </summary>
internal sealed class ClientConnection : IAsyncDisposable
{
    private readonly Socket socket;
    private readonly PipeReader input;
    private readonly PipeWriter output;
    private readonly Channel<OutstandingRequest> sendQueue = Channel.CreateUnbounded<OutstandingRequest>(
        new UnboundedChannelOptions { SingleReader = true }
    );
    private readonly Dictionary<ulong, OutstandingRequest> outstanding = [];
    private readonly CancellationTokenSource closed = new();
    private readonly int replyBytesMax;
    private Task? readLoop;
    private Task? writeLoop;
    private long nextRequestId;
    private Exception? failure;
    private readonly TimeProvider time;
    private long lastReadTimestamp;

    private ClientConnection(Socket socket, Stream stream, string endPoint, int replyBytesMax, TimeProvider time)
    {
        this.socket = socket;
        this.time = time;
        EndPoint = endPoint;
        this.replyBytesMax = replyBytesMax;
        input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 64 * 1024));
        output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 64 * 1024));
    }

    public string EndPoint { get; }

    /// <summary>The replica id the server announced in its handshake.</summary>
    public ReplicaId ReplicaId { get; private set; }

    public bool IsOpen => failure is null && !closed.IsCancellationRequested;

    /// <summary>
    /// Whether the replica sent anything on this connection after <paramref name="timestamp"/> (a
    /// timestamp of the client's <see cref="FastSmrClientOptions.Time"/>).
    /// </summary>
    public bool HeardFromSince(long timestamp) => Volatile.Read(ref lastReadTimestamp) >= timestamp;

    /// <summary>Requests sent or queued that have no reply yet.</summary>
    public int OutstandingCount
    {
        get
        {
            lock (outstanding)
            {
                return outstanding.Count;
            }
        }
    }

    /// <summary>
    /// Connects to <paramref name="endPoint"/>; with <paramref name="tls"/>, authenticates both ways (the server must
    /// present a member certificate of the same authority) before the Hello.
    /// </summary>
    public static async Task<ClientConnection> ConnectAsync(
        string endPoint,
        ulong clusterId,
        int replyBytesMax,
        TimeProvider time,
        TlsCredentials? tls,
        CancellationToken token
    )
    {
        var address = EndPointParser.Parse(endPoint);
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Stream stream;
        try
        {
            await socket.ConnectAsync(address, token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (tls is not null)
            {
                stream = await tls.ConnectAsync(stream, member: null, token).ConfigureAwait(false);
            }
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var connection = new ClientConnection(socket, stream, endPoint, replyBytesMax, time);
        try
        {
            await connection.HandshakeAsync(clusterId, token).ConfigureAwait(false);
        }
        catch
        {
            await connection.DisposeAsync().ConfigureAwait(false);
            throw;
        }

        connection.readLoop = Task.Run(connection.ReadLoopAsync, CancellationToken.None);
        connection.writeLoop = Task.Run(connection.WriteLoopAsync, CancellationToken.None);
        return connection;
    }

    /// <summary>Queues a frame; the header's request id is assigned here.</summary>
    /// <param name="type">The request frame type.</param>
    /// <param name="flags">Frame flags.</param>
    /// <param name="timeoutMicros">The remaining time budget sent to the server.</param>
    /// <param name="bodyLength">The body length.</param>
    /// <param name="writeBody">Writes the body into the span it is given.</param>
    /// <param name="state">Passed to <paramref name="writeBody"/> (so callers need no closure).</param>
    public OutstandingRequest Send<TState>(
        FrameType type,
        byte flags,
        uint timeoutMicros,
        int bodyLength,
        SpanAction<byte, TState> writeBody,
        TState state
    )
    {
        var id = (ulong)Interlocked.Increment(ref nextRequestId);
        var length = FrameCodec.HeaderSize + bodyLength;
        var frame = ArrayPool<byte>.Shared.Rent(length);
        FrameCodec.WriteHeader(frame, new FrameHeader(bodyLength, type, flags, SubmitStatus.Ok, id, timeoutMicros));
        writeBody(frame.AsSpan(FrameCodec.HeaderSize, bodyLength), state);
        var request = new OutstandingRequest(id, frame, length);
        lock (outstanding)
        {
            if (failure is not null)
            {
                ArrayPool<byte>.Shared.Return(frame);
                request.MarkFailed();
                request.Reply.TrySetException(new ConnectionLostException("connection to " + EndPoint + " is closed", failure));
                return request;
            }

            outstanding.Add(id, request);
        }

        if (!sendQueue.Writer.TryWrite(request))
        {
            Fail(new ConnectionLostException("connection to " + EndPoint + " is closed"));
        }

        return request;
    }

    /// <summary>Forgets a request whose caller gave up (its reply, if it comes, is dropped).</summary>
    public void Abandon(OutstandingRequest request)
    {
        lock (outstanding)
        {
            outstanding.Remove(request.RequestId);
        }
    }

    public async ValueTask DisposeAsync()
    {
        Fail(new ConnectionLostException("connection closed by the client"));
        await closed.CancelAsync().ConfigureAwait(false);
        socket.Dispose();
        if (readLoop is not null)
        {
            await readLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        if (writeLoop is not null)
        {
            await writeLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        closed.Dispose();
    }

    private async Task HandshakeAsync(ulong clusterId, CancellationToken token)
    {
        var hello = new byte[FrameCodec.HeaderSize + FrameCodec.HelloSize];
        FrameCodec.WriteHeader(hello, new FrameHeader(FrameCodec.HelloSize, FrameType.Hello, 0, SubmitStatus.Ok, 0, 0));
        FrameCodec.WriteHello(hello.AsSpan(FrameCodec.HeaderSize), clusterId);
        await output.WriteAsync(hello, token).ConfigureAwait(false);
        while (true)
        {
            var read = await input.ReadAsync(token).ConfigureAwait(false);
            var buffer = read.Buffer;
            if (FrameCodec.TryReadFrame(ref buffer, replyBytesMax, out var header, out var body))
            {
                var bytes = body.ToArray();
                input.AdvanceTo(buffer.Start);
                if (header.Type == FrameType.Error)
                {
                    throw new ProtocolException("server refused the handshake: " + System.Text.Encoding.UTF8.GetString(bytes));
                }

                if (header.Type != FrameType.HelloReply)
                {
                    throw new ProtocolException("expected a hello reply, got " + header.Type.ToString());
                }

                ReplicaId = FrameCodec.ReadHelloReply(bytes).ReplicaId;
                return;
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (read.IsCompleted)
            {
                throw new ConnectionLostException("server closed the connection during the handshake");
            }
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var read = await input.ReadAsync(closed.Token).ConfigureAwait(false);
                var buffer = read.Buffer;
                while (FrameCodec.TryReadFrame(ref buffer, replyBytesMax, out var header, out var body))
                {
                    var bytes = body.IsEmpty ? [] : body.ToArray();
                    if (header.Type == FrameType.Error)
                    {
                        throw new ProtocolException("server reported a protocol error: " + System.Text.Encoding.UTF8.GetString(bytes));
                    }

                    OutstandingRequest? request;
                    lock (outstanding)
                    {
                        outstanding.Remove(header.RequestId, out request);
                    }

                    request?.Reply.TrySetResult(new ClientReply(header.Type, header.Status, bytes));
                }

                Volatile.Write(ref lastReadTimestamp, time.GetTimestamp());
                input.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    throw new ConnectionLostException("server closed the connection");
                }
            }
        }
#pragma warning disable CA1031 // Any failure of the read side fails every outstanding request.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
        }
    }

    private async Task WriteLoopAsync()
    {
        var reader = sendQueue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(closed.Token).ConfigureAwait(false))
            {
                while (reader.TryRead(out var request))
                {
                    if (request.TryMarkSending())
                    {
                        output.Write(request.Frame.AsSpan(0, request.FrameLength));
                    }

                    ArrayPool<byte>.Shared.Return(request.Frame);
                }

                var flush = await output.FlushAsync(closed.Token).ConfigureAwait(false);
                if (flush.IsCompleted)
                {
                    throw new ConnectionLostException("server closed the connection");
                }
            }
        }
#pragma warning disable CA1031 // Any failure of the write side fails every outstanding request.
        catch (Exception e)
#pragma warning restore CA1031
        {
            Fail(e);
        }
    }

    private void Fail(Exception reason)
    {
        OutstandingRequest[] pending;
        lock (outstanding)
        {
            failure ??= reason;
            pending = [.. outstanding.Values];
            outstanding.Clear();
        }

        sendQueue.Writer.TryComplete();
        foreach (var request in pending)
        {
            // Claim every request the writer has not sent yet, before anyone can see the failure and retry it.
            request.MarkFailed();
        }

        foreach (var request in pending)
        {
            request.Reply.TrySetException(new ConnectionLostException("connection to " + EndPoint + " lost: " + reason.Message, reason));
        }

        try
        {
            socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException) { }
    }
}
