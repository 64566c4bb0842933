using System.Diagnostics;
using FastSmr.Cli;
using FastSmr.Client;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Server;

namespace FastSmr.Tests;

/// <summary>Replicas as <see cref="ReplicaServer"/>s in this process on 127.0.0.1 free ports, with a temp directory it deletes.</summary>
public sealed class InProcessCluster : IAsyncDisposable
{
    private readonly List<MemberConfig> members = [];
    private readonly Dictionary<uint, ReplicaServer> running = [];
    private readonly DurabilityMode durability;

    private readonly long snapshotInterval;

    private readonly Action<ServerOptions>? configure;

    private readonly string backend;

    public InProcessCluster(int replicas, DurabilityMode durability = DurabilityMode.Durable, long snapshotInterval = 2_048, Action<ServerOptions>? configure = null, string backend = "dotnext")
    {
        this.backend = backend;
        this.configure = configure;
        this.durability = durability;
        this.snapshotInterval = snapshotInterval;
        Directory = Path.Combine(Path.GetTempPath(), "fastsmr-test-" + Guid.NewGuid().ToString("N")[..10]);
        System.IO.Directory.CreateDirectory(Directory);
        for (var i = 1; i <= replicas; i++)
        {
            members.Add(new MemberConfig { Id = (uint)i, Raft = "127.0.0.1:" + LocalProcessCluster.FreePort(), Client = "127.0.0.1:" + LocalProcessCluster.FreePort() });
        }
    }

    public string Directory { get; }

    public IReadOnlyList<string> ClientEndPoints => members.Select(m => m.Client).ToList();

    public IEnumerable<ReplicaServer> Running => running.Values;

    public ReplicaServer this[uint id] => running[id];

    public async Task StartAllAsync()
    {
        foreach (var member in members)
        {
            await StartAsync(member.Id);
        }
    }

    public async Task StartAsync(uint id)
    {
        var options = new ServerOptions
        {
            Id = id,
            Members = members,
            DataDirectory = Path.Combine(Directory, "replica-" + id),
            Durability = durability,
            SnapshotInterval = snapshotInterval,
            Backend = backend,
        };
        configure?.Invoke(options);
        var server = new ReplicaServer(options);
        await server.StartAsync();
        running[id] = server;
    }

    public async Task StopAsync(uint id)
    {
        if (running.Remove(id, out var server))
        {
            await server.DisposeAsync();
        }
    }

    public async Task<ReplicaServer> WaitForLeaderAsync(TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        while (watch.Elapsed < timeout)
        {
            var leaders = running.Values.Where(s => s.Engine.Leadership.Role == ReplicaRole.Leader).ToList();
            if (leaders.Count == 1 && running.Values.All(s => s.Engine.Leadership.LeaderId == leaders[0].Options.Id))
            {
                return leaders[0];
            }

            await Task.Delay(20);
        }

        throw new TimeoutException($"no leader within {timeout}");
    }

    /// <summary>Waits until all running replicas have applied the same index with the same digest.</summary>
    public async Task<List<StatusReport>> WaitForConvergenceAsync(TimeSpan timeout)
    {
        var watch = Stopwatch.StartNew();
        List<StatusReport> statuses = [];
        while (watch.Elapsed < timeout)
        {
            statuses = running.Values.Select(s => s.Engine.GetStatus()).ToList();
            if (statuses.All(s => s.AppliedIndex == statuses[0].AppliedIndex && s.Digest == statuses[0].Digest && s.AppliedIndex >= s.CommitIndex))
            {
                return statuses;
            }

            await Task.Delay(20);
        }

        throw new TimeoutException("replicas did not converge: " + string.Join("; ", statuses));
    }

    public FastSmrClient NewClient(TimeSpan? timeout = null) => new(new FastSmrClientOptions
    {
        EndPoints = ClientEndPoints,
        DefaultTimeout = timeout ?? TimeSpan.FromSeconds(10),
    });

    public async ValueTask DisposeAsync()
    {
        foreach (var id in running.Keys.ToList())
        {
            await StopAsync(id);
        }

        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
