using System.CommandLine;
using System.Globalization;
using FastSmr.Server;
using Microsoft.Extensions.Logging;

namespace FastSmr.Cli;

/// <summary>The <c>fastsmr</c> command line.</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static async Task<int> Main(string[] args)
    {
        var root = new RootCommand("FastSmr: state machine replication for latency-sensitive .NET back-ends");
        root.Subcommands.Add(BuildServe());
        root.Subcommands.Add(BuildDemo());
        root.Subcommands.Add(BuildLoadgen());
        root.Subcommands.Add(BuildStatus());
        root.Subcommands.Add(BuildBench());
        root.Subcommands.Add(BuildCheck());
        root.Subcommands.Add(BuildChaos());
        root.Subcommands.Add(BuildLog());
        // On Ctrl-C / SIGTERM the command's token is cancelled and the process waits for the command to clean up: the
        // demo and chaos runs stop every replica they started (SIGTERM, up to 10 s each, then SIGKILL) before exiting.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = TimeSpan.FromSeconds(60) };
        return await root.Parse(args).InvokeAsync(invocation).ConfigureAwait(false);
    }

    private static Command BuildServe()
    {
        var config = new Option<FileInfo?>("--config") { Description = "JSON configuration file (flags override it)" };
        var id = new Option<uint?>("--id") { Description = "this replica's id" };
        var members = new Option<string?>("--members") { Description = "all replicas: id=raftHost:port/clientHost:port,..." };
        var data = new Option<string?>("--data") { Description = "data directory" };
        var clusterId = new Option<ulong?>("--cluster-id") { Description = "cluster id (default 1)" };
        var backend = new Option<string?>("--backend") { Description = "replication back-end: dotnext (default) or native" };
        var spin = new Option<int?>("--spin") { Description = "native back-end: iterations its threads spin before blocking when idle (0, the default: never spin)" };
        var dedicated = new Option<bool>("--dedicated-threads") { Description = "native back-end: hand work to dedicated replication and apply threads instead of running it on the thread that brought it" };
        var durability = new Option<string?>("--durability") { Description = "durable (default) or memory" };
        var electionLow = new Option<int?>("--election-timeout-ms") { Description = "lower election timeout in ms (upper = 2x)" };
        var proposals = new Option<int?>("--proposals-in-flight") { Description = "batches proposed and not yet committed at once (default 8)" };
        var snapshotInterval = new Option<long?>("--snapshot-interval") { Description = "take a snapshot every N log entries (default 2048)" };
        var logLevel = new Option<LogLevel>("--log-level") { Description = "log level", DefaultValueFactory = _ => LogLevel.Information };
        var dotnextLogLevel = new Option<LogLevel>("--dotnext-log-level") { Description = "log level of DotNext's own components (its warnings repeat a stack trace about every 100 ms while a peer is down)", DefaultValueFactory = _ => LogLevel.Error };
        var clientListen = new Option<string?>("--client-listen") { Description = "listen for clients here instead of on the advertised client endpoint (e.g. behind a proxy)" };
        var peerRoutes = new Option<string?>("--peer-routes") { Description = "dial peers through these addresses: id=host:port,... (member identities stay the canonical endpoints)" };
        var injectBug = new Option<string?>("--inject-bug") { Description = "TEST ONLY: break this replica on purpose (ack-without-append, stale-read) to prove the chaos harness catches it", Hidden = true };
        var exitWithParent = new Option<bool>("--exit-with-parent") { Description = "stop when the process that started this one exits (used by demo, chaos and the tests, so no replica outlives its harness)" };
        var command = new Command("serve", "run one replica") { config, id, members, data, clusterId, backend, spin, dedicated, durability, electionLow, snapshotInterval, proposals, clientListen, peerRoutes, injectBug, exitWithParent, logLevel, dotnextLogLevel };
        command.SetAction(async (result, token) =>
        {
            ServerOptions options;
            try
            {
                options = result.GetValue(config) is { } file ? ServerOptions.FromJsonFile(file.FullName) : new ServerOptions();
                var o = options;

                // A flag given on the command line overrides the configuration file.
                Override(id, v => o.Id = v);
                OverrideText(members, v => o.Members = ServerOptions.ParseMembers(v));
                OverrideText(data, v => o.DataDirectory = v);
                Override(clusterId, v => o.ClusterId = v);
                OverrideText(backend, v => o.Backend = v);
                OverrideText(durability, v => o.Durability = ServeCommand.ParseDurability(v));
                Override(proposals, v => o.Engine.ProposalsInFlightMax = v);
                Override(spin, v => o.SpinIterations = v);
                if (result.GetValue(dedicated))
                {
                    o.DedicatedThreads = true;
                }

                Override(snapshotInterval, v => o.SnapshotInterval = v);
                OverrideText(clientListen, v => o.ClientListen = v);
                OverrideText(peerRoutes, v => o.PeerRoutes = ServerOptions.ParsePeerRoutes(v));
                OverrideText(injectBug, v => o.InjectBug = v);
                Override(electionLow, v =>
                {
                    o.LowerElectionTimeoutMs = v;
                    o.UpperElectionTimeoutMs = 2 * v;
                });
            }
            catch (Exception e) when (e is FormatException or IOException or System.Text.Json.JsonException or ArgumentException)
            {
                await Console.Error.WriteLineAsync("fastsmr serve: " + e.Message).ConfigureAwait(false);
                return 2;
            }

            return await ServeCommand.RunAsync(options, result.GetValue(logLevel), result.GetValue(dotnextLogLevel), result.GetValue(exitWithParent), token).ConfigureAwait(false);

            void Override<T>(Option<T?> option, Action<T> set)
                where T : struct
            {
                if (result.GetValue(option) is { } value)
                {
                    set(value);
                }
            }

            void OverrideText(Option<string?> option, Action<string> set)
            {
                if (result.GetValue(option) is { } value)
                {
                    set(value);
                }
            }
        });
        return command;
    }

    private static (Option<int> Seconds, Option<int> Clients, Option<int> Pipeline, Option<int> Payload, Option<double> Rate, Option<string> Backend, Option<string> Durability, Option<FileInfo?> Json, Option<ulong> ClusterId, Option<int> Keys, Option<FileInfo?> Floor) LoadOptions(Command command)
    {
        var seconds = new Option<int>("--seconds") { Description = "measured seconds of load", DefaultValueFactory = _ => 10 };
        var clients = new Option<int>("--clients") { Description = "connections", DefaultValueFactory = _ => 64 };
        var pipeline = new Option<int>("--pipeline") { Description = "requests in flight per connection", DefaultValueFactory = _ => 1 };
        var payload = new Option<int>("--payload") { Description = "value size in bytes", DefaultValueFactory = _ => 64 };
        var rate = new Option<double>("--rate") { Description = "offered requests/s (open loop, latency from intended send time); 0 = closed loop", DefaultValueFactory = _ => 0 };
        var backend = new Option<string>("--backend") { Description = "replication back-end: dotnext or native", DefaultValueFactory = _ => "dotnext" };
        var durability = new Option<string>("--durability") { Description = "durable or memory", DefaultValueFactory = _ => "durable" };
        var json = new Option<FileInfo?>("--json") { Description = "write the figures as JSON to this file" };
        var clusterId = new Option<ulong>("--cluster-id") { Description = "cluster id", DefaultValueFactory = _ => 1 };
        var keys = new Option<int>("--keys") { Description = "distinct keys written", DefaultValueFactory = _ => 100_000 };
        var floor = new Option<FileInfo?>("--floor") { Description = "the JSON of `bench floor --json FILE` from this machine: the p50 is also reported as a ratio to its commit floor" };
        foreach (var option in new Option[] { seconds, clients, pipeline, payload, rate, backend, durability, json, clusterId, keys, floor })
        {
            command.Options.Add(option);
        }

        return (seconds, clients, pipeline, payload, rate, backend, durability, json, clusterId, keys, floor);
    }

    private static LoadSettings Settings(ParseResult result, (Option<int> Seconds, Option<int> Clients, Option<int> Pipeline, Option<int> Payload, Option<double> Rate, Option<string> Backend, Option<string> Durability, Option<FileInfo?> Json, Option<ulong> ClusterId, Option<int> Keys, Option<FileInfo?> Floor) o) => new()
    {
        Seconds = result.GetValue(o.Seconds),
        Clients = result.GetValue(o.Clients),
        Pipeline = result.GetValue(o.Pipeline),
        PayloadBytes = result.GetValue(o.Payload),
        Rate = result.GetValue(o.Rate),
        ClusterId = result.GetValue(o.ClusterId),
        Keys = result.GetValue(o.Keys),
        Floor = result.GetValue(o.Floor) is { } floorFile ? CommitFloor.Read(floorFile.FullName) : null,
    };

    private static Command BuildDemo()
    {
        var command = new Command("demo", "start replicas as processes on 127.0.0.1, run the KV load, check convergence, clean up");
        var o = LoadOptions(command);
        var replicas = new Option<int>("--replicas") { Description = "replica processes (odd, 1-9)", DefaultValueFactory = _ => 3 };
        var keep = new Option<bool>("--keep") { Description = "keep the temporary data directory" };
        var proposals = new Option<int?>("--proposals-in-flight") { Description = "passed to every replica's serve" };
        command.Options.Add(replicas);
        command.Options.Add(keep);
        command.Options.Add(proposals);
        var spinDemo = new Option<int?>("--spin") { Description = "native back-end: iterations the replicas' threads spin before blocking (default 0: never)" };
        command.Options.Add(spinDemo);
        var dedicatedDemo = new Option<bool>("--dedicated-threads") { Description = "native back-end: replicas hand work to dedicated threads (see serve --help)" };
        command.Options.Add(dedicatedDemo);
        command.SetAction(async (result, token) =>
        {
            LoadSettings settings;
            string durability;
            try
            {
                settings = Settings(result, o);
                settings.Validate();
                durability = ServeCommand.ParseDurability(result.GetValue(o.Durability)!).ToString().ToLowerInvariant();
                if (result.GetValue(replicas) is < 1 or > 9)
                {
                    throw new ArgumentException("--replicas must be 1..9");
                }
            }
            catch (Exception e) when (e is ArgumentException or FormatException)
            {
                await Console.Error.WriteLineAsync("fastsmr demo: " + e.Message).ConfigureAwait(false);
                return 2;
            }

            var serveArguments = new List<string>();
            if (result.GetValue(proposals) is { } p)
            {
                serveArguments.AddRange(["--proposals-in-flight", p.ToString(CultureInfo.InvariantCulture)]);
            }

            if (result.GetValue(spinDemo) is { } spinIterations)
            {
                serveArguments.AddRange(["--spin", spinIterations.ToString(CultureInfo.InvariantCulture)]);
            }

            if (result.GetValue(dedicatedDemo))
            {
                serveArguments.Add("--dedicated-threads");
            }

            return await DemoCommand.RunAsync(settings, result.GetValue(replicas), result.GetValue(o.Backend)!, durability, result.GetValue(o.Json)?.FullName, result.GetValue(keep), serveArguments, token).ConfigureAwait(false);
        });
        return command;
    }

    private static Command BuildLoadgen()
    {
        var command = new Command("loadgen", "run the KV load against a running cluster");
        var o = LoadOptions(command);
        var cluster = new Option<string>("--cluster") { Description = "client endpoints host:port,host:port,...", Required = true };
        command.Options.Add(cluster);
        command.SetAction(async (result, token) =>
        {
            LoadSettings settings;
            string[] endPoints;
            try
            {
                settings = Settings(result, o);
                settings.Validate();
                endPoints = result.GetValue(cluster)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                foreach (var endPoint in endPoints)
                {
                    _ = Core.EndPointParser.Parse(endPoint);
                }
            }
            catch (Exception e) when (e is ArgumentException or FormatException)
            {
                await Console.Error.WriteLineAsync("fastsmr loadgen: " + e.Message).ConfigureAwait(false);
                return 2;
            }

            return await LoadgenCommand.RunAsync(settings, endPoints, result.GetValue(o.Backend)!, result.GetValue(o.Durability)!, result.GetValue(o.Json)?.FullName, token).ConfigureAwait(false);
        });
        return command;
    }

    private static Command BuildBench()
    {
        var seconds = new Option<int>("--seconds") { Description = "measured seconds per row", DefaultValueFactory = _ => 5 };
        var writers = new Option<int>("--writers") { Description = "concurrent writers in the loaded rows", DefaultValueFactory = _ => 64 };
        var json = new Option<FileInfo?>("--json") { Description = "write the figures as JSON to this file" };
        var command = new Command("bench", "in-process 3-replica cluster: stock DotNext (one entry per command) against FastSmr's group commit, both durability modes, in one run") { seconds, writers, json };
        command.SetAction(async (result, token) =>
        {
            if (result.GetValue(seconds) is < 1 or > 600 || result.GetValue(writers) is < 1 or > 4096)
            {
                await Console.Error.WriteLineAsync("fastsmr bench: --seconds 1..600, --writers 1..4096").ConfigureAwait(false);
                return 2;
            }

            return await BenchCommand.RunAsync(result.GetValue(seconds), result.GetValue(writers), result.GetValue(json)?.FullName, token).ConfigureAwait(false);
        });
        return command;
    }

    private static Command BuildCheck()
    {
        var history = new Option<FileInfo>("--history") { Description = "history as JSON Lines (see FastSmr.Verification.HistoryFile)", Required = true };
        var budget = new Option<int>("--budget-seconds") { Description = "time budget; running out is inconclusive, never a pass", DefaultValueFactory = _ => 60 };
        var report = new Option<FileInfo?>("--report") { Description = "where to write the report (default: next to the history)" };
        var command = new Command("check", "check a key-value history for linearizability (exit 0 linearizable, 1 not, 3 inconclusive)") { history, budget, report };
        command.SetAction(async (result, token) =>
        {
            var path = result.GetValue(history)!.FullName;
            List<FastSmr.Verification.KvOperation> operations;
            try
            {
                operations = FastSmr.Verification.HistoryFile.Read(path);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                await Console.Error.WriteLineAsync("fastsmr check: " + e.Message).ConfigureAwait(false);
                return 2;
            }

            var check = FastSmr.Verification.LinearizabilityChecker.Check(operations, TimeSpan.FromSeconds(Math.Max(1, result.GetValue(budget))));
            var text = check.Describe();
            await Console.Out.WriteAsync(text).ConfigureAwait(false);
            var reportPath = result.GetValue(report)?.FullName ?? path + ".report.txt";
            await File.WriteAllTextAsync(reportPath, text, token).ConfigureAwait(false);
            await Console.Out.WriteLineAsync("fastsmr check: wrote " + reportPath).ConfigureAwait(false);
            return check.Verdict switch
            {
                FastSmr.Verification.CheckVerdict.Linearizable => 0,
                FastSmr.Verification.CheckVerdict.NotLinearizable => 1,
                _ => 3,
            };
        });
        return command;
    }

    private static Command BuildLog()
    {
        var directory = new Option<DirectoryInfo>("--dir") { Description = "the log directory", Required = true };
        var clusterId = new Option<ulong>("--cluster-id") { Description = "cluster id the segments must carry", DefaultValueFactory = _ => 0 };
        var nodeId = new Option<uint>("--node-id") { Description = "node id the segments must carry", DefaultValueFactory = _ => 0 };
        var segmentSize = new Option<long>("--segment-size") { Description = "segment size for new segments in bytes", DefaultValueFactory = _ => 64L << 20 };
        var verify = new Command("verify", "open a FastSmr.Log directory (recovering a torn tail, as a replica would) and check every record; exit 0 intact, 1 corrupt") { directory, clusterId, nodeId, segmentSize };
        verify.SetAction(result => LogCommand.Verify(result.GetValue(directory)!.FullName, result.GetValue(clusterId), result.GetValue(nodeId), result.GetValue(segmentSize), Console.Out));
        var seed = new Option<int>("--seed") { Description = "seed of the group sizes", DefaultValueFactory = _ => 1 };
        var torture = new Command("torture", "TEST ONLY: append and flush until killed, printing each durable index (the kill -9 crash tests)") { directory, seed, segmentSize };
        torture.Hidden = true;
        torture.SetAction((result, token) => LogCommand.TortureAsync(result.GetValue(directory)!.FullName, result.GetValue(seed), result.GetValue(segmentSize), token));
        return new Command("log", "FastSmr.Log tools") { verify, torture };
    }

    private static Command BuildChaos()
    {
        var seconds = new Option<int>("--seconds") { Description = "how long the nemesis injects faults", DefaultValueFactory = _ => 60 };
        var seed = new Option<int>("--seed") { Description = "seed of the fault schedule and the workload", DefaultValueFactory = _ => 1 };
        var replicas = new Option<int>("--replicas") { Description = "3 or 5", DefaultValueFactory = _ => 3 };
        var backend = new Option<string>("--backend") { Description = "replication back-end: dotnext or native", DefaultValueFactory = _ => "dotnext" };
        var outDirectory = new Option<string?>("--out") { Description = "where the history, check and report go (default chaos-results/seed-S)" };
        var electionTimeout = new Option<int>("--election-timeout-ms") { Description = "lower election timeout of every replica", DefaultValueFactory = _ => 1_000 };
        var budget = new Option<int>("--check-budget-seconds") { Description = "linearizability check budget (running out fails the run)", DefaultValueFactory = _ => 60 };
        var injectBug = new Option<string?>("--inject-bug") { Description = "TEST ONLY: every replica injects this bug (ack-without-append, stale-read); the verdict must be FAIL" };
        var command = new Command("chaos", "replicas behind fault-injecting proxies, a seeded nemesis, a linearizability check; prints one verdict line, exits 1 on FAIL") { seconds, seed, replicas, backend, outDirectory, electionTimeout, budget, injectBug };
        command.SetAction(async (result, token) =>
        {
            var settings = new ChaosSettings
            {
                Seconds = result.GetValue(seconds),
                Seed = result.GetValue(seed),
                Replicas = result.GetValue(replicas),
                Backend = result.GetValue(backend)!,
                OutDirectory = result.GetValue(outDirectory) ?? Path.Combine("chaos-results", "seed-" + result.GetValue(seed).ToString(CultureInfo.InvariantCulture)),
                ElectionTimeoutMs = result.GetValue(electionTimeout),
                CheckBudget = TimeSpan.FromSeconds(Math.Max(1, result.GetValue(budget))),
                InjectBug = result.GetValue(injectBug),
            };
            if (settings.Seconds is < 1 or > 86_400 || settings.Replicas is not (3 or 5) || settings.ElectionTimeoutMs < 50)
            {
                await Console.Error.WriteLineAsync("fastsmr chaos: --seconds 1..86400, --replicas 3 or 5, --election-timeout-ms >= 50").ConfigureAwait(false);
                return 2;
            }

            if (settings.InjectBug is { } bug && !FastSmr.Server.ServerOptions.InjectedBugs.Contains(bug))
            {
                await Console.Error.WriteLineAsync("fastsmr chaos: unknown --inject-bug '" + bug + "' (available: " + string.Join(", ", FastSmr.Server.ServerOptions.InjectedBugs) + ")").ConfigureAwait(false);
                return 2;
            }

            try
            {
                return await ChaosRun.RunAsync(settings, Console.Out, token).ConfigureAwait(false) ? 0 : 1;
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException or System.Net.Sockets.SocketException)
            {
                await Console.Out.WriteLineAsync(FormattableString.Invariant($"chaos: FAIL seed={settings.Seed} ops=0 unknown=0 faults= reasons: the run could not proceed: {e.Message}")).ConfigureAwait(false);
                return 1;
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Every replica and proxy was stopped on the way out (the run's disposals); no verdict for a partial run.
                await Console.Out.WriteLineAsync(FormattableString.Invariant($"chaos: FAIL seed={settings.Seed} reasons: interrupted; every process it started was stopped")).ConfigureAwait(false);
                return 130;
            }
        });
        return command;
    }

    private static Command BuildStatus()
    {
        var cluster = new Option<string>("--cluster") { Description = "client endpoints host:port,...", Required = true };
        var clusterId = new Option<ulong>("--cluster-id") { Description = "cluster id", DefaultValueFactory = _ => 1 };
        var command = new Command("status", "print every replica's status frame") { cluster, clusterId };
        command.SetAction(async (result, token) =>
        {
            var endPoints = result.GetValue(cluster)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            var reports = await ClusterProbe.StatusesAsync(endPoints, result.GetValue(clusterId), TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            foreach (var s in reports)
            {
                await Console.Out.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"replica {s.ReplicaId}: {s.Role,-9} term {s.Term}  leader {s.LeaderId}  commit {s.CommitIndex}  applied {s.AppliedIndex}  digest {s.Digest}")).ConfigureAwait(false);
            }

            return reports.Count == endPoints.Length ? 0 : 1;
        });
        return command;
    }
}
