using System.Net;
using System.Runtime.CompilerServices;
using DotNext.Net.Cluster.Consensus.Raft;
using DotNext.Net.Cluster.Consensus.Raft.Membership;
using DotNext.Net.Cluster.Consensus.Raft.StateMachine;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Security;

namespace FastSmr.DotNext;

/// <summary>
/// The reference back-end: DotNext's <see cref="RaftCluster"/> (TCP transport, static membership, <c>ColdStart = false</c>)
/// and <see cref="WriteAheadLog"/> (large chunks, periodic snapshots; flushed before a follower answers in durable mode).
/// </summary>
/// <remarks>
/// Limits of stock DotNext 6.12 that this back-end inherits: one AppendEntries in flight per follower; InstallSnapshot is
/// one uncompressed stream; member ids derive from endpoints. The native back-end exists to remove them.
/// </remarks>
public sealed class DotNextBackend : IReplicationBackend
{
    private readonly DotNextBackendOptions options;
    private readonly Dictionary<EndPoint, ReplicaId> idsByEndPoint = [];
    private StateMachineAdapter? stateMachine;
    private WriteAheadLog? log;
    private RaftCluster? cluster;
    private IReplicationHost? host;
    private readonly TaskCompletionSource<Exception> failure = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile StrongBox<LeadershipInfo> leadership = new(new LeadershipInfo(ReplicaRole.Follower, default, ReplicaId.None));

    /// <summary>Creates the back-end; nothing runs until <see cref="StartAsync"/>.</summary>
    public DotNextBackend(DotNextBackendOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        this.options = options;
        foreach (var (id, endPoint) in options.Members)
        {
            idsByEndPoint[endPoint] = id;
        }
    }

    /// <inheritdoc />
    public LeadershipInfo Leadership => leadership.Value;

    /// <inheritdoc />
    public Task<Exception> Failure => failure.Task;

    /// <inheritdoc />
    public LogIndex CommitIndex => new(log?.LastCommittedEntryIndex ?? 0);

    /// <inheritdoc />
    public async Task StartAsync(IReplicationHost host, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(host);
        if (this.host is not null)
        {
            throw new InvalidOperationException("already started");
        }

        this.host = host;
        var root = Path.GetFullPath(options.DataDirectory);
        Directory.CreateDirectory(root);
        stateMachine = new StateMachineAdapter(new DirectoryInfo(Path.Combine(root, "snapshots")), host, options.Snapshots);

        // The snapshot must be restored before the WAL is constructed: the WAL reads it in its constructor.
        await stateMachine.RestoreAsync(token).ConfigureAwait(false);
        var walOptions = new WriteAheadLog.Options { Location = Path.Combine(root, "wal"), ChunkSize = options.ChunkSize };
        log = new DurableWriteAheadLog(walOptions, stateMachine, options.Durability == DurabilityMode.Durable, OnStorageFailure);

        var local = LocalEndPoint();
        RaftCluster.NodeConfiguration configuration =
            options.PeerRoutes.Count == 0 && options.Tls is null
                ? new RaftCluster.TcpConfiguration(local)
                {
                    // null selects DotNext's in-memory configuration storage, filled below with the static membership.
                    ConfigurationStorage = null!,
                    ColdStart = false,
                    LowerElectionTimeout = options.Election.LowerMs,
                    UpperElectionTimeout = options.Election.UpperMs,
                    HeartbeatThreshold = options.HeartbeatThreshold,
                    LoggerFactory = options.LoggerFactory,
                }
                : new RaftCluster.CustomTransportConfiguration(
                    local,
                    new SocketTransport.ListenerFactory(options.Tls, IsPeer),
                    new SocketTransport.RoutedConnectionFactory(RoutesByEndPoint(), options.Tls, idsByEndPoint)
                )
                {
                    ConfigurationStorage = null!,
                    ColdStart = false,
                    LowerElectionTimeout = options.Election.LowerMs,
                    UpperElectionTimeout = options.Election.UpperMs,
                    HeartbeatThreshold = options.HeartbeatThreshold,
                    LoggerFactory = options.LoggerFactory,
                };
        var builder = (
            (InMemoryClusterConfigurationStorage<EndPoint>)configuration.ConfigurationStorage
        ).CreateInitialConfigurationBuilder();
        foreach (var (_, endPoint) in options.Members)
        {
            builder.Add(endPoint);
        }

        builder.Build();
        cluster = new RaftCluster(configuration) { AuditTrail = log };
        cluster.LeaderChanged += OnLeaderChanged;
        await cluster.StartAsync(token).ConfigureAwait(false);
    }

    /// <inheritdoc />
    public async Task StopAsync(CancellationToken token)
    {
        var c = Interlocked.Exchange(ref cluster, null);
        if (c is not null)
        {
            c.LeaderChanged -= OnLeaderChanged;
            await c.StopAsync(token).ConfigureAwait(false);
            c.Dispose();
        }

        var l = Interlocked.Exchange(ref log, null);
        if (l is not null)
        {
            await l.DisposeAsync().ConfigureAwait(false);
        }

        var s = Interlocked.Exchange(ref stateMachine, null);
        if (s is not null)
        {
            await s.DisposeAsync().ConfigureAwait(false);
        }

        leadership = new StrongBox<LeadershipInfo>(new LeadershipInfo(ReplicaRole.Stopped, Leadership.Term, ReplicaId.None));
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync() => await StopAsync(CancellationToken.None).ConfigureAwait(false);

    /// <inheritdoc />
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ProposeResult> ProposeAsync(ReadOnlyMemory<byte> batch, Term term, CancellationToken token)
    {
        var c = cluster;
        if (c is null || Leadership.Role != ReplicaRole.Leader || c.Term != term.Value)
        {
            return new ProposeResult(ProposeOutcome.NotLeader, term, default);
        }

        try
        {
            // Appends with exactly the term the engine registered the batch under, forces a replication round and waits
            // until the entry is committed and applied here.
            await c.ReplicateAsync(new BinaryLogEntry { Content = batch, Term = term.Value }, token).ConfigureAwait(false);
            return new ProposeResult(ProposeOutcome.Committed, term, default);
        }
        catch (NotLeaderException)
        {
            // DotNext does not say whether the entry was appended before leadership was lost: it may still commit.
            return new ProposeResult(ProposeOutcome.Unknown, term, default);
        }
        catch (OperationCanceledException)
        {
            return new ProposeResult(ProposeOutcome.Unknown, term, default);
        }
        catch (ObjectDisposedException)
        {
            return new ProposeResult(ProposeOutcome.Unknown, term, default);
        }
        catch (Exception e) when (DurableWriteAheadLog.IsStorageFailure(e))
        {
            OnStorageFailure(e); // the leader's own append or the applier behind it failed: this replica cannot go on
            return new ProposeResult(ProposeOutcome.Unknown, term, default);
        }
    }

    private void OnStorageFailure(Exception e) =>
        failure.TrySetResult(new IOException("DotNext's log or snapshot storage failed: " + e.GetBaseException().Message, e));

    /// <inheritdoc />
    public async ValueTask<LogIndex?> ReadBarrierAsync(CancellationToken token)
    {
        var c = cluster;
        var l = log;
        if (c is null || l is null || Leadership.Role != ReplicaRole.Leader)
        {
            return null;
        }

        try
        {
            // Strong: the leader forces a replication round (confirming it still leads) and waits until its last entry
            // is applied locally.
            await c.ApplyReadBarrierAsync(ReadBarrierType.Strong, token).ConfigureAwait(false);
        }
        catch (NotLeaderException)
        {
            return null;
        }
        catch (QuorumUnreachableException)
        {
            return null;
        }

        return Leadership.Role == ReplicaRole.Leader ? new LogIndex(l.LastAppliedIndex) : null;
    }

    /// <summary>
    /// The peer routes keyed by the peer's member endpoint, the form DotNext dials by (it knows members only by endpoint).
    /// </summary>
    private Dictionary<IPEndPoint, IPEndPoint> RoutesByEndPoint()
    {
        var routes = new Dictionary<IPEndPoint, IPEndPoint>();
        foreach (var (id, endPoint) in options.Members)
        {
            if (options.PeerRoutes.TryGetValue(id, out var route))
            {
                routes[endPoint] = route;
            }
        }

        return routes;
    }

    private bool IsPeer(CertificateIdentity identity) =>
        identity.Number != options.ReplicaId.Value && options.Members.Any(m => m.Id.Value == identity.Number);

    private IPEndPoint LocalEndPoint()
    {
        foreach (var (id, endPoint) in options.Members)
        {
            if (id == options.ReplicaId)
            {
                return endPoint;
            }
        }

        throw new InvalidOperationException("local replica is not a member");
    }

    private void OnLeaderChanged(RaftCluster<RaftClusterMember> sender, RaftClusterMember? leader)
    {
        var leaderId = ReplicaId.None;
        var role = ReplicaRole.Follower;
        if (leader is not null)
        {
            idsByEndPoint.TryGetValue(leader.EndPoint, out leaderId);
            if (!leader.IsRemote)
            {
                role = ReplicaRole.Leader;
                leaderId = options.ReplicaId;
            }
        }

        var info = new LeadershipInfo(role, new Term(sender.Term), leaderId);
        leadership = new StrongBox<LeadershipInfo>(info);
        host?.OnLeadershipChanged(info);
    }
}
