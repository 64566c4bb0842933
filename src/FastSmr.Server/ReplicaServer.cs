using System.Net;
using System.Net.Sockets;
using FastSmr.Core.Kv;
using FastSmr.Core.StateMachines;
using FastSmr.DotNext;
using FastSmr.Engine;
using FastSmr.Native;
using FastSmr.Security;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastSmr.Server;

/// <summary>
/// A replica process's host: builds the back-end named in the options, the engine around the state machine, and the
/// client protocol listener. This is the composition root — the only place that chooses a back-end.
/// </summary>
public sealed class ReplicaServer : IAsyncDisposable
{
    private readonly ILoggerFactory loggerFactory;
    private readonly ILogger logger;
    private readonly Dictionary<ReplicaId, string> clientEndPoints = [];
    private readonly CancellationTokenSource stopping = new();
    private readonly HashSet<Task> sessions = [];
    private Socket? listener;
    private Task? acceptLoop;

    /// <summary>How long the accept loop waits after an accept error (EMFILE and the like) before trying again.</summary>
    private static readonly TimeSpan AcceptBackOff = TimeSpan.FromMilliseconds(50);

    /// <summary>TCP keep-alive on client connections: first probe after this much silence, then every
    /// <see cref="KeepAliveIntervalSeconds"/>, <see cref="KeepAliveProbes"/> times before the connection is dropped.</summary>
    private const int KeepAliveIdleSeconds = 30;
    private const int KeepAliveIntervalSeconds = 10;
    private const int KeepAliveProbes = 3;

    private int connections;
    private readonly LogBudget clientWarnings = new(LogBudget.WarningsPerSecond);
    private readonly Lock statusLock = new();
    private double statusTokens = double.MaxValue; // starts full (clamped to the rate on first use)
    private long statusRefilledAt;

    /// <summary>Creates the replica (nothing runs until <see cref="StartAsync"/>).</summary>
    /// <param name="options">The replica's configuration.</param>
    /// <param name="stateMachine">The state machine; the built-in key-value store when null.</param>
    /// <param name="loggerFactory">Logging.</param>
    /// <param name="time">The one clock of the engine, the back-end and the client sessions; the system clock when null.</param>
    /// <param name="newStateMachine">Makes an empty state machine of the same kind as <paramref name="stateMachine"/>: a
    /// snapshot received from a peer is restored into one as a check before it may replace anything. Not needed for the
    /// built-in store; without it, a custom state machine's received snapshots are checked by their header only.</param>
    public ReplicaServer(
        ServerOptions options,
        IStateMachine? stateMachine = null,
        ILoggerFactory? loggerFactory = null,
        TimeProvider? time = null,
        Func<IStateMachine>? newStateMachine = null
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
        Time = time ?? TimeProvider.System;
        this.loggerFactory = loggerFactory ?? NullLoggerFactory.Instance;
        logger = this.loggerFactory.CreateLogger<ReplicaServer>();
        foreach (var member in options.Members)
        {
            clientEndPoints[member.Id] = member.Client;
        }

        InjectedBug = options.InjectBug switch
        {
            "ack-without-append" => InjectedBug.AckWithoutAppend,
            "stale-read" => InjectedBug.StaleRead,
            _ => InjectedBug.None,
        };
        StateMachine = stateMachine ?? new KvStateMachine();
        Tls = options.Certificates is { } directory ? TlsCredentials.Load(directory, CertificateIdentity.Member(options.Id)) : null;
        options.ClusterId = TlsCredentials.ResolveClusterId(options.ClusterId, Tls);
        Backend = CreateBackend(options, this.loggerFactory, Time, Tls);
        options.Engine.ReplicaId = options.Id;
        options.Engine.ClusterId = options.ClusterId;
        newStateMachine ??= stateMachine is null ? () => new KvStateMachine() : null;
        Engine = new ReplicaEngine(
            options.Engine,
            StateMachine,
            Backend,
            this.loggerFactory.CreateLogger<ReplicaEngine>(),
            Time,
            newStateMachine
        );
        Failure = Task.WhenAny(Engine.Failure, Backend.Failure).Unwrap();
    }

    /// <summary>This replica's TLS credentials (its member certificate); null when <see cref="ServerOptions.Insecure"/>.</summary>
    public TlsCredentials? Tls { get; }

    /// <summary>The test-only fault this replica was asked to inject (<see cref="ServerOptions.InjectBug"/>).</summary>
    internal InjectedBug InjectedBug { get; }

    /// <summary>Counts requests for the injected fault.</summary>
    internal long InjectedCounter;

    /// <summary>The clock the engine, the back-end and the client sessions read.</summary>
    public TimeProvider Time { get; }

    /// <summary>The options the replica runs with.</summary>
    public ServerOptions Options { get; }

    /// <summary>The engine (for embedding: submit and read in-process).</summary>
    public ReplicaEngine Engine { get; }

    /// <summary>The replication back-end.</summary>
    public IReplicationBackend Backend { get; }

    /// <summary>How many client connections are open now.</summary>
    public int OpenConnections => Volatile.Read(ref connections);

    /// <summary>
    /// Completes, with the cause, when this replica stopped working for good: its back-end failed (storage) or its state
    /// machine threw applying a committed entry. The host should stop the server and report the cause (<c>fastsmr
    /// serve</c> exits with code 1).
    /// </summary>
    public Task<Exception> Failure { get; }

    /// <summary>The replicated state machine.</summary>
    public IStateMachine StateMachine { get; }

    /// <summary>Builds the back-end the options name; both get the same shared options, parsed here once.</summary>
    public static IReplicationBackend CreateBackend(
        ServerOptions options,
        ILoggerFactory loggerFactory,
        TimeProvider? time = null,
        TlsCredentials? tls = null
    )
    {
        ArgumentNullException.ThrowIfNull(options);
        var members = new List<(ReplicaId, IPEndPoint)>();
        foreach (var member in options.Members)
        {
            members.Add((member.Id, ServerOptions.ParseEndPoint(member.Raft)));
        }

        var routes = new Dictionary<ReplicaId, IPEndPoint>();
        foreach (var (peer, route) in options.PeerRoutes)
        {
            routes[peer] = ServerOptions.ParseEndPoint(route);
        }

        return options.Backend switch
        {
            BackendKind.DotNext => new DotNextBackend(Shared(new DotNextBackendOptions { ChunkSize = options.WalChunkBytes })),
            BackendKind.Native => new NativeBackend(
                Shared(
                    new NativeBackendOptions
                    {
                        ClusterId = options.ClusterId,
                        SpinIterations = options.SpinIterations,
                        InlineDrive = !options.DedicatedThreads,
                    }
                )
            ),
            _ => throw new ArgumentException("unknown back-end " + options.Backend),
        };

        T Shared<T>(T backendOptions)
            where T : ReplicationBackendOptions
        {
            backendOptions.ReplicaId = options.Id;
            backendOptions.Members = members;
            backendOptions.DataDirectory = options.DataDirectory;
            backendOptions.Durability = options.Durability;
            backendOptions.LoggerFactory = loggerFactory;
            backendOptions.PeerRoutes = routes;
            backendOptions.Tls = tls;
            backendOptions.Election = new ElectionTiming(options.LowerElectionTimeoutMs, options.UpperElectionTimeoutMs);
            backendOptions.Snapshots = new SnapshotPolicy { EntriesInterval = options.SnapshotInterval };
            backendOptions.Time = time ?? TimeProvider.System;
            return backendOptions;
        }
    }

    /// <summary>Starts the engine and the client listener.</summary>
    public async Task StartAsync(CancellationToken token = default)
    {
        RefuseAmnesia();
        MembershipRecord.CheckOrCreate(Options);
        var endPoint = ServerOptions.ParseEndPoint(Options.ClientListen ?? Options.Self.Client);
        var socket = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.Bind(endPoint);
            socket.Listen(512);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        listener = socket;
        await Engine.StartAsync(token).ConfigureAwait(false);
        acceptLoop = Task.Run(AcceptLoopAsync, CancellationToken.None);
        if (Tls is null)
        {
            ServerLog.Insecure(logger, Options.Id);
        }

        if (logger.IsEnabled(LogLevel.Information))
        {
            ServerLog.Started(logger, Options.Id, Options.Self.Client, Options.Self.Raft, Options.Backend, Options.Durability);
        }
    }

    /// <summary>
    /// A DotNext replica of a multi-member cluster with an empty data directory needs <see cref="ServerOptions.Bootstrap"/>
    /// (decision 90): it cannot tell a new cluster from one whose writes it acknowledged before its data was lost.
    /// </summary>
    private void RefuseAmnesia()
    {
        var directory = Options.DataDirectory;
        var empty = !Directory.Exists(directory) || !Directory.EnumerateFileSystemEntries(directory).Any();
        if (Options.Backend == BackendKind.DotNext && Options.Members.Count > 1 && empty && !Options.Bootstrap)
        {
            throw new InvalidOperationException(
                "replica "
                    + Options.Id
                    + "'s data directory "
                    + directory
                    + " is empty: on the DotNext back-end give --bootstrap on the first start of a new cluster only; a "
                    + "DotNext replica that lost its data must not rejoin a running cluster (it would vote as if it had "
                    + "acknowledged nothing); the native back-end rejoins such a replica safely"
            );
        }
    }

    /// <summary>Stops accepting clients, closes sessions, stops the engine and the back-end.</summary>
    public async Task StopAsync()
    {
        if (stopping.IsCancellationRequested)
        {
            return;
        }

        await stopping.CancelAsync().ConfigureAwait(false);
        listener?.Dispose();
        if (acceptLoop is not null)
        {
            await acceptLoop.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }

        await Engine.StopAsync().ConfigureAwait(false);
        Task[] running;
        lock (sessions)
        {
            running = [.. sessions];
        }

        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        await StopAsync().ConfigureAwait(false);
        await Backend.DisposeAsync().ConfigureAwait(false);
        stopping.Dispose();
        Tls?.Dispose();
    }

    /// <summary>
    /// Whether a warning about a client (refused, violating the protocol, closed) may be logged now: at most 20 a second,
    /// so that a flood of bad clients is counted rather than logged line by line.
    /// </summary>
    internal bool MayWarnAboutClient()
    {
        if (!clientWarnings.TryTake(out var skipped))
        {
            return false;
        }

        if (skipped > 0)
        {
            ServerLog.ClientWarningsSuppressed(logger, skipped);
        }

        return true;
    }

    internal string? ClientEndPointOf(ReplicaId replicaId) => clientEndPoints.GetValueOrDefault(replicaId);

    /// <summary>Takes one Status request from the server-wide budget (<see cref="ServerOptions.StatusPerSecondMax"/>).</summary>
    internal bool TryTakeStatusToken()
    {
        lock (statusLock)
        {
            var now = Time.GetTimestamp();
            var rate = Options.StatusPerSecondMax;
            statusTokens = Math.Min(rate, statusTokens + (Time.GetElapsedTime(statusRefilledAt, now).TotalSeconds * rate));
            statusRefilledAt = now;
            if (statusTokens < 1)
            {
                return false;
            }

            statusTokens--;
            return true;
        }
    }

    private async Task AcceptLoopAsync()
    {
        var token = stopping.Token;
        var sessionLogger = loggerFactory.CreateLogger<ClientSession>();
        while (!token.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await listener!.AcceptAsync(token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (token.IsCancellationRequested)
                {
                    return;
                }

                // Out of file descriptors (EMFILE) or a transient error: back off instead of spinning on accept.
                await Task.Delay(AcceptBackOff, Time, CancellationToken.None).ConfigureAwait(false);
                continue;
            }

            if (Interlocked.Increment(ref connections) > Options.ConnectionsMax)
            {
                Interlocked.Decrement(ref connections);
                if (MayWarnAboutClient())
                {
                    ServerLog.ConnectionRefused(logger, Options.ConnectionsMax, client.RemoteEndPoint?.ToString() ?? "?");
                }

                client.Dispose();
                continue;
            }

            client.NoDelay = true;
            client.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true); // find peers gone silently
            client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, KeepAliveIdleSeconds);
            client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, KeepAliveIntervalSeconds);
            client.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, KeepAliveProbes);
            var session = new ClientSession(client, this, sessionLogger);
            var task = RunSessionAsync(session, token);
            lock (sessions)
            {
                sessions.Add(task);
            }

            // Registered after the add, so the removal cannot run first (the session starts with a yield).
            _ = task.ContinueWith(
                (finished, state) =>
                {
                    var all = (HashSet<Task>)state!;
                    lock (all)
                    {
                        all.Remove(finished);
                    }
                },
                sessions,
                CancellationToken.None,
                TaskContinuationOptions.ExecuteSynchronously,
                TaskScheduler.Default
            );
        }
    }

    private async Task RunSessionAsync(ClientSession session, CancellationToken token)
    {
        try
        {
            await Task.Yield();
            await session.RunAsync(token).ConfigureAwait(false);
        }
        finally
        {
            Interlocked.Decrement(ref connections);
        }
    }
}
