using System.CommandLine;
using FastSmr.Engine;
using FastSmr.Server;
using Microsoft.Extensions.Logging;

namespace FastSmr.Cli;

/// <summary>
/// <c>serve</c>'s options: a JSON configuration file, then flags that override it, read into
/// <see cref="ServerOptions"/>.
/// </summary>
internal sealed class ServeOptions
{
    private readonly Option<FileInfo?> config = new("--config") { Description = "JSON configuration file (flags override it)" };
    private readonly Option<uint?> id = new("--id") { Description = "this replica's id" };
    private readonly Option<string?> members = new("--members") { Description = "all replicas: id=raftHost:port/clientHost:port,..." };
    private readonly Option<string?> data = new("--data") { Description = "data directory" };
    private readonly Option<ulong?> clusterId = new("--cluster-id")
    {
        Description = "cluster id (default: from the certificates' authority, random per cluster; 1 with --insecure)",
    };
    private readonly Option<BackendKind?> backend = new("--backend") { Description = "replication back-end: dotnext (default) or native" };
    private readonly Option<int?> spin = new("--spin")
    {
        Description = "native back-end: iterations its threads spin before blocking when idle (0, the default: never spin)",
    };
    private readonly Option<bool> dedicated = new("--dedicated-threads")
    {
        Description =
            "native back-end: hand work to dedicated replication and apply threads instead of running it on the thread that brought it",
    };
    private readonly Option<DurabilityMode?> durability = new("--durability") { Description = "durable (default) or memory" };
    private readonly Option<int?> electionLow = new("--election-timeout-ms") { Description = "lower election timeout in ms (upper = 2x)" };
    private readonly Option<int?> proposals = new("--proposals-in-flight")
    {
        Description = "batches proposed and not yet committed at once (default 8)",
    };
    private readonly Option<long?> snapshotInterval = new("--snapshot-interval")
    {
        Description = "take a snapshot every N log entries (default 2048)",
    };
    private readonly Option<string?> clientListen = new("--client-listen")
    {
        Description = "listen for clients here instead of on the advertised client endpoint (e.g. behind a proxy)",
    };
    private readonly Option<string?> peerRoutes = new("--peer-routes")
    {
        Description = "dial peers through these addresses: id=host:port,... (member identities stay the canonical endpoints)",
    };
    private readonly Option<string?> certs = new("--certs")
    {
        Description = "certificates directory (fastsmr certs create): mutual TLS on the peer and client ports",
    };
    private readonly Option<bool> insecure = new("--insecure")
    {
        Description = "run both ports in plaintext, trusting whoever can reach them (required when there is no --certs)",
    };
    private readonly Option<bool> bootstrap = new("--bootstrap")
    {
        Description = "DotNext back-end: the first start of a new cluster (an empty data directory is expected); first start only",
    };
    private readonly Option<string?> injectBug = new("--inject-bug")
    {
        Description = "TEST ONLY: break this replica on purpose (ack-without-append, stale-read) to prove the chaos harness catches it",
        Hidden = true,
    };

    public Option<LogLevel> LogLevel { get; } =
        new("--log-level") { Description = "log level", DefaultValueFactory = _ => Microsoft.Extensions.Logging.LogLevel.Information };

    public Option<LogLevel> DotNextLogLevel { get; } =
        new("--dotnext-log-level")
        {
            Description =
                "log level of DotNext's own components (its warnings repeat a stack trace about every 100 ms while a peer is down)",
            DefaultValueFactory = _ => Microsoft.Extensions.Logging.LogLevel.Error,
        };

    public Option<bool> ExitWithParent { get; } =
        new("--exit-with-parent")
        {
            Description =
                "stop when the process that started this one exits (used by demo, chaos and the tests, so no replica outlives its harness)",
        };

    public void AddTo(Command command)
    {
        foreach (
            var option in new Option[]
            {
                config,
                id,
                members,
                data,
                clusterId,
                backend,
                spin,
                dedicated,
                durability,
                electionLow,
                snapshotInterval,
                proposals,
                clientListen,
                peerRoutes,
                certs,
                insecure,
                bootstrap,
                injectBug,
                ExitWithParent,
                LogLevel,
                DotNextLogLevel,
            }
        )
        {
            command.Options.Add(option);
        }
    }

    /// <summary>The configuration file's options with every flag given applied over them.</summary>
    public ServerOptions Read(ParseResult result)
    {
        var o = result.GetValue(config) is { } file ? ServerOptions.FromJsonFile(file.FullName) : new ServerOptions();
        Override(result, id, v => o.Id = new ReplicaId(v));
        OverrideText(result, members, v => o.Members = ServerOptions.ParseMembers(v));
        OverrideText(result, data, v => o.DataDirectory = v);
        Override(result, clusterId, v => o.ClusterId = v);
        Override(result, backend, v => o.Backend = v);
        Override(result, durability, v => o.Durability = v);
        Override(result, proposals, v => o.Engine.ProposalsInFlightMax = v);
        Override(result, spin, v => o.SpinIterations = v);
        if (result.GetValue(dedicated))
        {
            o.DedicatedThreads = true;
        }

        Override(result, snapshotInterval, v => o.SnapshotInterval = v);
        OverrideText(result, clientListen, v => o.ClientListen = v);
        OverrideText(result, peerRoutes, v => o.PeerRoutes = ServerOptions.ParsePeerRoutes(v));
        OverrideText(result, injectBug, v => o.InjectBug = v);
        OverrideText(result, certs, v => o.Certificates = v);
        o.Insecure |= result.GetValue(insecure);
        o.Bootstrap |= result.GetValue(bootstrap);
        Override(result, electionLow, v =>
        {
            o.LowerElectionTimeoutMs = v;
            o.UpperElectionTimeoutMs = (int)Math.Min(2L * v, int.MaxValue); // validated after: no overflow here
        });
        return o;
    }

    private static void Override<T>(ParseResult result, Option<T?> option, Action<T> set)
        where T : struct
    {
        if (result.GetValue(option) is { } value)
        {
            set(value);
        }
    }

    private static void OverrideText(ParseResult result, Option<string?> option, Action<string> set)
    {
        if (result.GetValue(option) is { } value)
        {
            set(value);
        }
    }
}
