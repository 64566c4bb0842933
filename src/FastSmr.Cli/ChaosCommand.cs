using System.CommandLine;
using System.Globalization;
using FastSmr.Testing.Chaos;
using FastSmr.Testing.Clusters;

namespace FastSmr.Cli;

/// <summary><c>fastsmr chaos</c>: one seeded chaos run with its verdict line (<see cref="ChaosRun"/>).</summary>
internal static class ChaosCommand
{
    public static Command Build()
    {
        var seconds = new Option<int>("--seconds") { Description = "how long the nemesis injects faults", DefaultValueFactory = _ => 60 };
        var seed = new Option<int>("--seed") { Description = "seed of the fault schedule and the workload", DefaultValueFactory = _ => 1 };
        var replicas = new Option<int>("--replicas") { Description = "3 or 5", DefaultValueFactory = _ => 3 };
        var backend = CommonOptions.Backend();
        var outDirectory = new Option<string?>("--out")
        {
            Description = "where the history, check and report go (default chaos-results/seed-S)",
        };
        var electionTimeout = new Option<int>("--election-timeout-ms")
        {
            Description = "lower election timeout of every replica",
            DefaultValueFactory = _ => 1_000,
        };
        var budget = new Option<int>("--check-budget-seconds")
        {
            Description = "linearizability check budget (running out fails the run)",
            DefaultValueFactory = _ => 60,
        };
        var injectBug = new Option<string?>("--inject-bug")
        {
            Description = "TEST ONLY: every replica injects this bug (ack-without-append, stale-read); the verdict must be FAIL",
        };
        var command = new Command(
            "chaos",
            "replicas behind fault-injecting proxies, a seeded nemesis, a linearizability check; prints one verdict line, exits 1 on FAIL"
        )
        {
            seconds,
            seed,
            replicas,
            backend,
            outDirectory,
            electionTimeout,
            budget,
            injectBug,
        };
        var tls = new TlsOptions(command, ownCluster: true);
        command.SetAction(
            async (result, token) =>
            {
                var settings = new ChaosSettings
                {
                    Seconds = result.GetValue(seconds),
                    Seed = result.GetValue(seed),
                    Replicas = result.GetValue(replicas),
                    Backend = result.GetValue(backend),
                    OutDirectory = result.GetValue(outDirectory)
                        ?? Path.Combine("chaos-results", "seed-" + result.GetValue(seed).ToString(CultureInfo.InvariantCulture)),
                    ElectionTimeoutMs = result.GetValue(electionTimeout),
                    CheckBudget = TimeSpan.FromSeconds(Math.Max(1, result.GetValue(budget))),
                    InjectBug = result.GetValue(injectBug),
                    Insecure = result.GetValue(tls.Insecure),
                };
                try
                {
                    settings.Validate();
                }
                catch (ArgumentException e)
                {
                    return await CommonOptions.UsageErrorAsync("chaos", e.Message).ConfigureAwait(false);
                }

                return await RunAsync(settings, token).ConfigureAwait(false);
            }
        );
        return command;
    }

    private static async Task<int> RunAsync(ChaosSettings settings, CancellationToken token)
    {
        try
        {
            return await ChaosRun.RunAsync(settings, ReplicaLauncher.CurrentProgram(), Console.Out, token).ConfigureAwait(false) ? 0 : 1;
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException or System.Net.Sockets.SocketException)
        {
            await Console
                .Out.WriteLineAsync(
                    FormattableString.Invariant(
                        $"chaos: FAIL seed={settings.Seed} ops=0 unknown=0 faults= reasons: the run could not proceed: {e.Message}"
                    )
                )
                .ConfigureAwait(false);
            return 1;
        }
        catch (OperationCanceledException) when (token.IsCancellationRequested)
        {
            // Every replica and proxy was stopped on the way out (the run's disposals); no verdict for a partial run.
            await Console
                .Out.WriteLineAsync(
                    FormattableString.Invariant(
                        $"chaos: FAIL seed={settings.Seed} reasons: interrupted; every process it started was stopped"
                    )
                )
                .ConfigureAwait(false);
            return 130;
        }
    }
}
