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
/// while a socket is full (<see cref="PeerConnection"/>). A snapshot travels on a connection of its own, so it never queues
/// behind, or in front of, AppendEntries.
/// </summary>
/// <remarks>
/// Sending never blocks the thread driving the core: while a peer is unreachable (connecting, or more than
/// <see cref="NativeBackendOptions.PeerQueueBytesMax"/> queued) its messages are dropped and Raft resends.
/// </remarks>
internal sealed partial class PeerTransport : IMessageBus
{
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024, leaveOpen: true);

    /// <summary>
    /// Incoming connections that have not yet passed their TLS handshake and hello: a flood on the peer port cannot
    /// exhaust memory or descriptors, and as the oldest is closed to make room, it cannot keep a member out either.
    /// Admitted connections are bounded per peer (one message connection, <see cref="SnapshotReceptionsMax"/> snapshot
    /// connections).
    /// </summary>
    private const int PendingConnectionsMax = 16;

    /// <summary>A connection that has not finished its TLS handshake and hello by then is closed: silent sockets hold no slot.</summary>
    private static readonly TimeSpan HelloTimeout = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a frame (or a snapshot stream) may go without progress once it has started: a peer that sends part of a
    /// large frame and stops must not pin that buffer. Loopback and LAN peers move a 64 MiB frame in well under a
    /// second.
    /// </summary>
    private static readonly TimeSpan StallMax = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Snapshot streams received at once; more are refused (the sender retries). Each stages up to
    /// <see cref="NativeBackendOptions.SnapshotBytesMax"/> on disk, so this bounds the staging directory too.
    /// </summary>
    private const int SnapshotReceptionsMax = 2;

    private readonly Engine.LogBudget refusalLog = new(Engine.LogBudget.WarningsPerSecond);
    private readonly SemaphoreSlim snapshotReceptions = new(SnapshotReceptionsMax, SnapshotReceptionsMax);

    /// <summary>How long an outgoing message connection may take to connect (a failed one is retried 50 ms later).</summary>
    internal static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(2);

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
    private readonly List<Socket> pending = []; // under `incoming`: connections before their hello, oldest first
    private readonly Dictionary<int, Socket> latestFrom = []; // under `incoming`: each peer's current message connection
    private readonly Dictionary<int, int> snapshotStreamsFrom = []; // under `incoming`: snapshot connections per peer
    private readonly List<Task> tasks = [];
    private Socket? listener;
    private int stagingCounter;

    public PeerTransport(
        NativeBackendOptions options,
        string stagingDirectory,
        Action<Message, long> received,
        Action receivedBatch,
        Func<Message, SnapshotHeader, bool> snapshotReceived,
        MonotonicClock clock,
        ILogger logger
    )
    {
        this.receivedBatch = receivedBatch;
        this.options = options;
        self = (int)options.ReplicaId.Value;
        this.received = received;
        this.snapshotReceived = snapshotReceived;
        this.stagingDirectory = stagingDirectory;
        foreach (var leftover in Directory.Exists(stagingDirectory) ? Directory.EnumerateFiles(stagingDirectory, "incoming-*.tmp") : [])
        {
            SnapshotFile.TryDelete(leftover); // staged before a crash: never handed to the core
        }

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
                links[(int)id.Value] = new PeerLink(this, (int)id.Value, dial);
            }
        }

        listenEndPoint = own!;
    }

    /// <summary>Whether this replica has no state yet (term 0, empty log): said in every message connection's hello.</summary>
    public Func<bool>? Fresh { get; init; }

    /// <summary>Called with a snapshot's index when the file about to be sent no longer verifies (a damaged disk).</summary>
    public Action<long>? SnapshotDamaged { get; init; }

    /// <summary>Called with each peer's id and its hello's "no state yet" flag when its message connection is admitted.</summary>
    public Action<int, bool>? Greeted { get; init; }

    /// <summary>The back-end's clock (receive times of messages, reconnect pacing).</summary>
    public MonotonicClock Clock { get; }

    /// <summary>The back-end's options (cluster id, queue limits) for the links.</summary>
    internal NativeBackendOptions Options => options;

    /// <summary>This replica's id, sent in every hello.</summary>
    internal int Self => self;

    /// <summary>Cancelled when the transport is disposed.</summary>
    internal CancellationTokenSource Stopping => stopping;

    internal ILogger Logger => logger;

    /// <summary>Messages dropped because their peer was unreachable or too far behind.</summary>
    public long Dropped => links.Values.Sum(l => Interlocked.Read(ref l.DroppedCount));

    public void Start()
    {
        var socket = new Socket(listenEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(listenEndPoint);
            socket.Listen(128);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        listener = socket;
        Track(Task.Run(AcceptLoopAsync));
    }

    /// <summary>
    /// Queues <paramref name="message"/> for its peer (only the thread driving the core). Call <see cref="Flush"/> after a
    /// batch.
    /// </summary>
    public void Send(Message message)
    {
        if (links.TryGetValue((int)message.To.Value, out var link))
        {
            link.Send(message);
        }
    }

    /// <summary>Opens a connection to every peer that has none (paced), so that hellos flow before any message does.</summary>
    public void EnsureConnected()
    {
        foreach (var link in links.Values)
        {
            link.EnsureConnected();
        }
    }

    /// <summary>Wakes the senders of every peer written to since the last call.</summary>
    public void Flush()
    {
        foreach (var link in links.Values)
        {
            link.Flush();
        }
    }

    /// <summary>
    /// Streams <paramref name="snapshot"/> to the message's recipient on a connection of its own (at most one at a
    /// time per peer).
    /// </summary>
    public void SendSnapshot(Message message, SnapshotHeader snapshot)
    {
        if (links.TryGetValue((int)message.To.Value, out var link))
        {
            link.SendSnapshot(message, snapshot.Path);
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

    /// <summary>Keeps <paramref name="task"/> so that disposal waits for it.</summary>
    internal void Track(Task task)
    {
        lock (tasks)
        {
            tasks.RemoveAll(t => t.IsCompleted);
            tasks.Add(task);
        }
    }
}
