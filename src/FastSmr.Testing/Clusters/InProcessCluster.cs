using FastSmr.Client;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Server;

namespace FastSmr.Testing.Clusters;

/// <summary>
/// Replicas as <see cref="ReplicaServer"/>s in this process on 127.0.0.1 free ports, with a temporary directory it deletes.
/// Statuses come from each engine directly (no client hop), judged by <see cref="Convergence"/> as in every other cluster.
/// </summary>
public sealed class InProcessCluster : IReplicaCluster
{
    private readonly List<MemberConfig> members = [];
    private readonly Dictionary<ReplicaId, ReplicaServer> running = [];
    private readonly DurabilityMode durability;
    private readonly long snapshotInterval;
    private readonly Action<ServerOptions>? configure;
    private readonly BackendKind backend;

    /// <summary>Creates (but does not start) a cluster of <paramref name="replicas"/> replicas.</summary>
    /// <param name="replicas">How many replicas.</param>
    /// <param name="durability">The durability mode every replica runs in.</param>
    /// <param name="snapshotInterval">Log entries between snapshots.</param>
    /// <param name="configure">Adjusts each replica's options before it starts.</param>
    /// <param name="backend">The back-end every replica runs.</param>
    /// <param name="insecure">Run both ports in plaintext instead of mutual TLS.</param>
    public InProcessCluster(
        int replicas,
        DurabilityMode durability = DurabilityMode.Durable,
        long snapshotInterval = 2_048,
        Action<ServerOptions>? configure = null,
        BackendKind backend = BackendKind.DotNext,
        bool insecure = false
    )
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(replicas, 1);
        this.backend = backend;
        this.configure = configure;
        this.durability = durability;
        this.snapshotInterval = snapshotInterval;
        Directory = Path.Combine(Path.GetTempPath(), "fastsmr-test-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(Directory);
        Certificates = insecure ? null : ClusterCertificates.Create(Path.Combine(Directory, "certs"), replicas);
        for (var i = 1; i <= replicas; i++)
        {
            members.Add(
                new MemberConfig
                {
                    Id = new ReplicaId((uint)i),
                    Raft = FreePorts.LoopbackEndPoint(),
                    Client = FreePorts.LoopbackEndPoint(),
                }
            );
        }
    }

    /// <inheritdoc/>
    public string Directory { get; }

    /// <inheritdoc/>
    public string? Certificates { get; }

    /// <inheritdoc/>
    public ulong ClusterId => FastSmr.Security.TlsCredentials.ResolveClusterId(0, ((IReplicaCluster)this).ClientTls);

    /// <inheritdoc/>
    public IReadOnlyList<ReplicaId> Ids => members.ConvertAll(m => m.Id);

    /// <inheritdoc/>
    public IReadOnlyList<string> ClientEndPoints => members.ConvertAll(m => m.Client);

    /// <summary>The replicas that are running.</summary>
    public IEnumerable<ReplicaServer> Running => running.Values;

    /// <summary>A running replica.</summary>
    public ReplicaServer this[ReplicaId id] => running[id];

    /// <inheritdoc/>
    public async Task StartAllAsync()
    {
        foreach (var member in members)
        {
            await StartAsync(member.Id).ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public async Task StartAsync(ReplicaId id)
    {
        var options = new ServerOptions
        {
            Id = id,
            Members = members,
            DataDirectory = Path.Combine(Directory, "replica-" + id),
            Durability = durability,
            SnapshotInterval = snapshotInterval,
            Backend = backend,
            Certificates = Certificates,
            Insecure = Certificates is null,
        };
        options.Bootstrap = !System.IO.Directory.Exists(options.DataDirectory); // its first start
        configure?.Invoke(options);
        var server = new ReplicaServer(options);
        await server.StartAsync().ConfigureAwait(false);
        running[id] = server;
    }

    /// <inheritdoc/>
    public async Task StopAsync(ReplicaId id)
    {
        if (running.Remove(id, out var server))
        {
            await server.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <inheritdoc/>
    public Task<List<StatusReport>> StatusesAsync(TimeSpan timeout) => Task.FromResult(Statuses());

    /// <inheritdoc/>
    public async Task<StatusReport> WaitForLeaderAsync(TimeSpan timeout) =>
        await Wait.ForAsync(() => Task.FromResult(Convergence.AgreedLeader(Statuses(), running.Count)), timeout).ConfigureAwait(false)
        ?? throw new TimeoutException("no agreed leader within " + timeout);

    /// <summary>Waits for an agreed leader (<see cref="WaitForLeaderAsync"/>) and returns its server.</summary>
    public async Task<ReplicaServer> WaitForLeaderServerAsync(TimeSpan timeout) =>
        running[(await WaitForLeaderAsync(timeout).ConfigureAwait(false)).ReplicaId];

    /// <inheritdoc/>
    public async Task<List<StatusReport>?> WaitForConvergenceAsync(TimeSpan timeout)
    {
        List<StatusReport>? converged = null;
        await Wait.TryUntilAsync(
                () =>
                {
                    var statuses = Statuses();
                    converged = Convergence.IsConverged(statuses, running.Count) ? statuses : null;
                    return Task.FromResult(converged is not null);
                },
                timeout
            )
            .ConfigureAwait(false);
        return converged;
    }

    /// <summary>A client of this cluster that knows every replica.</summary>
    public FastSmrClient NewClient(TimeSpan? timeout = null) =>
        new(
            new FastSmrClientOptions { EndPoints = ClientEndPoints, DefaultTimeout = timeout ?? TimeSpan.FromSeconds(10) }.Secured(
                ((IReplicaCluster)this).ClientTls
            )
        );

    /// <summary>Stops every replica and deletes the directory.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var id in running.Keys.ToList())
        {
            await StopAsync(id).ConfigureAwait(false);
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException) { }
    }

    private List<StatusReport> Statuses()
    {
        var statuses = new List<StatusReport>(running.Count);
        foreach (var server in running.Values)
        {
            statuses.Add(server.Engine.GetStatus());
        }

        return statuses;
    }
}
