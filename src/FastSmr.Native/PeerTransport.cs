using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using FastSmr.Raft;
using Microsoft.Extensions.Logging;

namespace FastSmr.Native;

/// <summary>
/// The peer transport (decisions 54, 57): one outgoing TCP connection per peer carrying this replica's messages to it,
/// and the incoming connections that carry the peers' messages here (read through pipelines). The thread running the
/// core serializes messages into a buffer per peer and sends it itself, once per round; an async sender takes over only
/// while a socket is full (<see cref="Connection"/>). A snapshot travels on a connection of its own, so it never queues
/// behind, or in front of, AppendEntries.
/// </summary>
/// <remarks>
/// Sending never blocks the replication thread: while a peer is unreachable (connecting, or more than
/// <see cref="NativeBackendOptions.PeerQueueBytesMax"/> queued) its messages are dropped and Raft resends.
/// </remarks>
internal sealed partial class PeerTransport : IAsyncDisposable
{
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true);

    /// <summary>Incoming connections served at once: a flood on the peer port cannot exhaust memory or descriptors.</summary>
    private const int IncomingConnectionsMax = 64;

    /// <summary>A connection that has not sent its hello by then is closed: silent sockets must not hold slots.</summary>
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long an outgoing message connection may take to connect (a failed one is retried 50 ms later).</summary>
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

    /// <summary>How long a snapshot connection may take to connect (the core asks for the snapshot again if it fails).</summary>
    private static readonly TimeSpan SnapshotConnectTimeout = TimeSpan.FromSeconds(5);

    /// <summary>How long disposing waits for the receive loops and senders to end.</summary>
    private static readonly TimeSpan DisposeWaitMax = TimeSpan.FromSeconds(10);

    /// <summary>The pause after a failed accept (EMFILE, a transient error), so the loop does not spin a core on it.</summary>
    private static readonly TimeSpan AcceptBackOff = TimeSpan.FromMilliseconds(50);

    private readonly NativeBackendOptions options;
    private readonly int self;
    private readonly IPEndPoint listenEndPoint;
    private readonly Dictionary<int, PeerLink> links = [];
    private readonly Action<Message, long> received;
    private readonly Action receivedBatch;
    private readonly Func<Message, SnapshotHeader, bool> snapshotReceived;
    private readonly string stagingDirectory;
    private readonly ILogger logger;
    private readonly CancellationTokenSource stopping = new();
    private readonly HashSet<Socket> incoming = [];
    private readonly Dictionary<int, Socket> latestFrom = []; // under `incoming`: each peer's current message connection
    private readonly List<Task> tasks = [];
    private Socket? listener;
    private int stagingCounter;

    public PeerTransport(NativeBackendOptions options, string stagingDirectory, Action<Message, long> received, Action receivedBatch, Func<Message, SnapshotHeader, bool> snapshotReceived, Func<long> clock, ILogger logger)
    {
        this.receivedBatch = receivedBatch;
        this.options = options;
        self = (int)options.ReplicaId;
        this.received = received;
        this.snapshotReceived = snapshotReceived;
        this.stagingDirectory = stagingDirectory;
        this.logger = logger;
        Clock = clock;
        IPEndPoint? own = null;
        foreach (var (id, endPoint) in options.Members)
        {
            if (id == options.ReplicaId)
            {
                own = endPoint;
            }
            else
            {
                var dial = options.PeerRoutes.TryGetValue(id, out var route) ? route : endPoint;
                links[(int)id] = new PeerLink(this, (int)id, dial);
            }
        }

        listenEndPoint = own!;
    }

    public Func<long> Clock { get; }

    /// <summary>Messages dropped because their peer was unreachable or too far behind.</summary>
    public long Dropped => links.Values.Sum(l => Interlocked.Read(ref l.DroppedCount));

    public void Start()
    {
        var socket = new Socket(listenEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(listenEndPoint);
            socket.Listen(IncomingConnectionsMax);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        listener = socket;
        Track(Task.Run(AcceptLoopAsync));
    }

    /// <summary>Queues <paramref name="message"/> for its peer (replication thread only). Call <see cref="FlushAll"/> after a batch.</summary>
    public void Send(Message message)
    {
        if (links.TryGetValue(message.To, out var link))
        {
            link.Send(message);
        }
    }

    /// <summary>Wakes the senders of every peer written to since the last call.</summary>
    public void FlushAll()
    {
        foreach (var link in links.Values)
        {
            link.Flush();
        }
    }

    /// <summary>Streams snapshot <paramref name="path"/> to the message's recipient on a connection of its own (at most one at a time per peer).</summary>
    public void SendSnapshot(Message message, string path)
    {
        if (links.TryGetValue(message.To, out var link))
        {
            link.SendSnapshot(message, path);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await stopping.CancelAsync().ConfigureAwait(false);
        listener?.Dispose();
        foreach (var link in links.Values)
        {
            link.Close();
        }

        lock (incoming)
        {
            foreach (var socket in incoming)
            {
                socket.Dispose();
            }
        }

        Task[] all;
        lock (tasks)
        {
            all = [.. tasks];
        }

        await Task.WhenAll(all).WaitAsync(DisposeWaitMax).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        stopping.Dispose();
    }

    private void Track(Task task)
    {
        lock (tasks)
        {
            tasks.RemoveAll(t => t.IsCompleted);
            tasks.Add(task);
        }
    }

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
            ReadResult hello;
            using (var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(token))
            {
                helloTimeout.CancelAfter(HelloTimeout);
                hello = await reader.ReadAtLeastAsync(WireFormat.HelloSize, helloTimeout.Token).ConfigureAwait(false);
            }

            if (hello.Buffer.Length < WireFormat.HelloSize)
            {
                return;
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
                Log.PeerRefused(logger, remote, refused);
                return;
            }

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
            Log.PeerRefused(logger, remote, e.Message);
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The peer went away or we are stopping: it reconnects on its own.
        }
        finally
        {
            await reader.CompleteAsync().ConfigureAwait(false);
            await stream.DisposeAsync().ConfigureAwait(false);
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
    }

    private async Task ReceiveMessagesAsync(PipeReader reader, int from, CancellationToken token)
    {
        while (true)
        {
            var result = await reader.ReadAsync(token).ConfigureAwait(false);
            var buffer = result.Buffer;
            var now = Clock();
            while (WireFormat.TryRead(ref buffer, out var message))
            {
                if (message!.From != from)
                {
                    throw new InvalidDataException("a message from replica " + message.From + " on replica " + from + "'s connection");
                }

                received(message, now);
            }

            reader.AdvanceTo(buffer.Start, buffer.End);
            receivedBatch(); // once per read: everything that arrived together is stepped together
            if (result.IsCompleted)
            {
                return;
            }
        }
    }

    private async Task ReceiveSnapshotAsync(PipeReader reader, int from, CancellationToken token)
    {
        Message? message = null;
        long length = 0;
        while (message is null)
        {
            var result = await reader.ReadAsync(token).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (WireFormat.TryRead(ref buffer, out message))
            {
                if (buffer.Length < 8)
                {
                    reader.AdvanceTo(result.Buffer.Start, result.Buffer.End);
                    message = null;
                    if (result.IsCompleted)
                    {
                        return;
                    }

                    continue;
                }

                length = ReadInt64(buffer.Slice(0, 8));
                reader.AdvanceTo(buffer.GetPosition(8));
            }
            else
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        }

        if (message.Type != MessageType.Snapshot || message.From != from || length < SnapshotFile.FixedHeaderSize || length > options.SnapshotBytesMax)
        {
            throw new InvalidDataException("a snapshot stream must start with a Snapshot message and a length in [" + SnapshotFile.FixedHeaderSize + ", " + options.SnapshotBytesMax + "], got " + message.Type + " and " + length);
        }

        var staged = Path.Combine(stagingDirectory, "incoming-" + from + "-" + Interlocked.Increment(ref stagingCounter) + ".tmp");
        var accepted = false;
        try
        {
            using (var file = new FileStream(staged, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, useAsync: false))
            {
                var remaining = length;
                while (remaining > 0)
                {
                    var result = await reader.ReadAsync(token).ConfigureAwait(false);
                    var take = result.Buffer.Length < remaining ? result.Buffer : result.Buffer.Slice(0, remaining);
                    foreach (var segment in take)
                    {
                        file.Write(segment.Span);
                    }

                    remaining -= take.Length;
                    reader.AdvanceTo(take.End);
                    if (remaining > 0 && result.IsCompleted)
                    {
                        throw new IOException("snapshot stream ended " + remaining + " bytes early");
                    }
                }
            }

            var header = SnapshotFile.Verify(staged);
            if (header.Index != message.Index || header.Term != message.LogTerm)
            {
                throw new InvalidDataException("the snapshot file covers (" + header.Index + ", " + header.Term + ") but the message says (" + message.Index + ", " + message.LogTerm + ")");
            }

            accepted = snapshotReceived(message, header);
        }
        finally
        {
            if (!accepted)
            {
                SnapshotFile.TryDelete(staged);
            }
        }
    }

    private static long ReadInt64(ReadOnlySequence<byte> bytes)
    {
        Span<byte> copy = stackalloc byte[8];
        bytes.CopyTo(copy);
        return BinaryPrimitives.ReadInt64LittleEndian(copy);
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 101, Level = LogLevel.Warning, Message = "peer connection from {Remote} refused: {Reason}")]
        public static partial void PeerRefused(ILogger logger, string remote, string reason);

        [LoggerMessage(EventId = 102, Level = LogLevel.Debug, Message = "connection to replica {Peer} at {EndPoint} failed: {Reason}")]
        public static partial void ConnectFailed(ILogger logger, int peer, IPEndPoint endPoint, string reason);

        [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "snapshot {Index} sent to replica {Peer} ({Bytes} bytes)")]
        public static partial void SnapshotSent(ILogger logger, long index, int peer, long bytes);

        [LoggerMessage(EventId = 104, Level = LogLevel.Warning, Message = "snapshot {Index} to replica {Peer} failed: {Reason}")]
        public static partial void SnapshotFailed(ILogger logger, long index, int peer, string reason);
    }

    /// <summary>The outgoing side towards one peer.</summary>
    private sealed class PeerLink(PeerTransport owner, int id, IPEndPoint dial)
    {
        private static readonly long RetryTicks = System.Diagnostics.Stopwatch.Frequency / 20; // 50 ms between attempts
        private readonly Lock gate = new();
        private Connection? connection;
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

            if (!current.TryWrite(message, owner.options.PeerQueueBytesMax))
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

        public void SendSnapshot(Message message, string path)
        {
            if (Interlocked.CompareExchange(ref snapshotSending, 1, 0) != 0)
            {
                return; // one at a time; the core asks again if this one does not arrive
            }

            owner.Track(Task.Run(async () =>
            {
                try
                {
                    await StreamSnapshotAsync(message, path).ConfigureAwait(false);
                }
                finally
                {
                    Volatile.Write(ref snapshotSending, 0);
                }
            }));
        }

        public void Close()
        {
            lock (gate)
            {
                connection?.Close();
                connection = null;
            }
        }

        private async Task StreamSnapshotAsync(Message message, string path)
        {
            var token = owner.stopping.Token;
            try
            {
                using var socket = new Socket(dial.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(token);
                timeout.CancelAfter(SnapshotConnectTimeout);
                await socket.ConnectAsync(dial, timeout.Token).ConfigureAwait(false);
                using var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, 1 << 16, useAsync: false);
                var header = new ArrayBufferWriter<byte>();
                WireFormat.WriteHello(header.GetSpan(WireFormat.HelloSize), WireFormat.KindSnapshot, owner.options.ClusterId, owner.self);
                header.Advance(WireFormat.HelloSize);
                WireFormat.Write(header, message);
                BinaryPrimitives.WriteInt64LittleEndian(header.GetSpan(8), file.Length);
                header.Advance(8);
                using var stream = new NetworkStream(socket, ownsSocket: false);
                await stream.WriteAsync(header.WrittenMemory, token).ConfigureAwait(false);
                await file.CopyToAsync(stream, 1 << 16, token).ConfigureAwait(false);
                await stream.FlushAsync(token).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Send);
                Log.SnapshotSent(owner.logger, message.Index, id, file.Length);
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                Log.SnapshotFailed(owner.logger, message.Index, id, e.Message);
            }
        }

        private void Reconnect(Connection? failed)
        {
            lock (gate)
            {
                if (failed is not null && ReferenceEquals(connection, failed))
                {
                    failed.Close();
                    connection = null;
                }

                var now = System.Diagnostics.Stopwatch.GetTimestamp();
                if (connecting || connection is not null || now - lastAttempt < RetryTicks || owner.stopping.IsCancellationRequested)
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
            Connection? opened = null;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(owner.stopping.Token);
                timeout.CancelAfter(ConnectTimeout);
                await socket.ConnectAsync(dial, timeout.Token).ConfigureAwait(false);
                opened = new Connection(socket);
                var hello = new byte[WireFormat.HelloSize];
                WireFormat.WriteHello(hello, WireFormat.KindMessages, owner.options.ClusterId, owner.self);
                opened.WriteRaw(hello); // goes out with the first flush of messages
            }
            catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
            {
                Log.ConnectFailed(owner.logger, id, dial, e.Message);
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
                        if (owner.stopping.IsCancellationRequested)
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

    /// <summary>
    /// One outgoing connection. The replication thread serializes messages into a buffer and, once per
    /// <see cref="Ready"/>, sends it itself with one non-blocking <c>send</c> — no hand-off, no wake-up of another
    /// thread on the latency path. Only when the socket cannot take everything (a slow peer, a large batch) does an async
    /// sender take over; while it runs, new messages accumulate and leave together in its next send (coalescing under load).
    /// </summary>
    private sealed class Connection
    {
        private const int ShrinkAbove = 4 << 20;
        private readonly Socket socket;
        private readonly Lock gate = new();
        private ArrayBufferWriter<byte> filling = new(64 * 1024);
        private ArrayBufferWriter<byte> draining = new(64 * 1024);
        private bool senderRunning;

        public Connection(Socket socket)
        {
            this.socket = socket;
            socket.Blocking = false;
        }

        public bool Failed { get; private set; }

        /// <summary>Serializes <paramref name="message"/> unless more than <paramref name="queuedMax"/> bytes already wait for the socket.</summary>
        public bool TryWrite(Message message, long queuedMax)
        {
            lock (gate)
            {
                if (filling.WrittenCount + (senderRunning ? draining.WrittenCount : 0) > queuedMax)
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

        /// <summary>Sends what was written (replication thread); returns the async sender when one had to take over.</summary>
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
            var bytes = filling.WrittenSpan;
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
                    Reset(ref filling);
                    senderRunning = false;
                    return null;
                }

                // The socket is full: the rest goes out asynchronously.
                (filling, draining) = (draining, filling);
            }

            return Task.Run(() => DrainAsync(Math.Max(0, sent)));
        }

        public void Close()
        {
            Failed = true;
            socket.Dispose();
        }

        private async Task DrainAsync(int offset)
        {
            try
            {
                while (true)
                {
                    var memory = draining.WrittenMemory[offset..];
                    while (!memory.IsEmpty)
                    {
                        var sent = await socket.SendAsync(memory, SocketFlags.None).ConfigureAwait(false);
                        memory = memory[sent..];
                    }

                    offset = 0;
                    lock (gate)
                    {
                        Reset(ref draining);
                        if (filling.WrittenCount == 0)
                        {
                            senderRunning = false;
                            return;
                        }

                        (filling, draining) = (draining, filling); // everything written meanwhile, in one send
                    }
                }
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException)
            {
                // The peer is gone: the next send finds the connection failed and reconnects.
                Close();
            }
        }

        private static void Reset(ref ArrayBufferWriter<byte> buffer)
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
}
