using System.Globalization;
using FastSmr.Core.Protocol;
using FastSmr.Testing.Clusters;
using FastSmr.Verification;

namespace FastSmr.Testing.Chaos;

/// <summary>
/// <c>fastsmr chaos</c>: replicas as processes behind per-pair proxies, register and set clients, a seeded nemesis, then
/// heal, quiet, convergence, read-back of every acknowledged set write, and the linearizability check of the history.
/// Every process it started is stopped whatever happens.
/// </summary>
public static class ChaosRun
{
    /// <summary>Runs one chaos run and prints its verdict line.</summary>
    /// <param name="settings">The run.</param>
    /// <param name="launcher">How to start the <c>fastsmr</c> replicas.</param>
    /// <param name="progress">Progress lines and the verdict.</param>
    /// <param name="token">Stops the run (every process is still stopped; no verdict).</param>
    /// <returns>Whether the run passed.</returns>
    public static async Task<bool> RunAsync(ChaosSettings settings, ReplicaLauncher launcher, TextWriter progress, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(progress);
        var outDirectory = Path.GetFullPath(settings.OutDirectory);
        Directory.CreateDirectory(outDirectory);
        string[] serveArguments =
        [
            "--election-timeout-ms",
            settings.ElectionTimeoutMs.ToString(CultureInfo.InvariantCulture),
            "--log-level",
            "Information",
            .. settings.InjectBug is null ? Array.Empty<string>() : ["--inject-bug", settings.InjectBug],
        ];
        var cluster = new ProcessCluster(
            settings.Replicas,
            launcher,
            settings.Backend,
            settings.Durability,
            clusterId: (ulong)(uint)settings.Seed + 1,
            extraServeArguments: serveArguments,
            insecure: settings.Insecure
        );
        await using var clusterScope = cluster.ConfigureAwait(false);
        var topology = ChaosTopology.Create(cluster);
        await using var topologyScope = topology.ConfigureAwait(false);
        var started = ChaosWorkload.Now();
        await PrintHeaderAsync(settings, progress).ConfigureAwait(false);
        await StartAsync(cluster, outDirectory, progress).ConfigureAwait(false);

        var registerClients = settings.RegisterClients > 0 ? settings.RegisterClients : 2 * settings.Replicas;
        var workload = new ChaosWorkload(
            cluster.AdvertisedClientEndPoints,
            cluster.ClusterId,
            settings.Seed,
            settings.OperationTimeout,
            settings.KeySlots,
            settings.OperationsPerKey,
            ((IReplicaCluster)cluster).ClientTls
        );
        workload.Start(registerClients, settings.SetClients);
        var nemesis = new ChaosNemesis(cluster, topology, workload, settings.Seed, settings.RecoveryMax, progress);
        await InjectFaultsAsync(settings, workload, nemesis, progress, token).ConfigureAwait(false);

        var outcome = new ChaosOutcome(settings, registerClients, started);
        await CheckConvergenceAsync(cluster, settings, outcome).ConfigureAwait(false);
        await ReadBackAsync(workload, outcome, progress).ConfigureAwait(false);
        foreach (var id in cluster.Crashed)
        {
            outcome.Reasons.Add("replica " + id.ToString() + " exited on its own: " + cluster.LogTail(id, 10));
        }

        await CheckHistoryAsync(workload, outcome, outDirectory, progress).ConfigureAwait(false);
        outcome.JudgeWorkload(workload);
        outcome.JudgeNemesis(nemesis);
        CopyLogs(cluster, outDirectory);
        await outcome.WriteReportAsync(Path.Combine(outDirectory, "report.json"), workload, nemesis).ConfigureAwait(false);
        await progress
            .WriteLineAsync("chaos: note: kill -9 leaves the page cache intact, so no chaos run can show a missing fsync")
            .ConfigureAwait(false);
        await progress.WriteLineAsync(outcome.VerdictLine(workload, nemesis)).ConfigureAwait(false);
        return outcome.Pass;
    }

    private static async Task PrintHeaderAsync(ChaosSettings settings, TextWriter progress)
    {
        var replicas = FormattableString.Invariant(
            $"{settings.Replicas} {Names.Of(settings.Backend)} replicas ({Names.Of(settings.Durability)})"
        );
        var bug =
            (settings.Insecure ? ", INSECURE" : ", mutual TLS")
            + (settings.InjectBug is null ? "" : ", INJECTED BUG " + settings.InjectBug);
        var header = FormattableString.Invariant($"chaos: seed {settings.Seed}, {settings.Seconds} s, {replicas}, ");
        var timeout = FormattableString.Invariant($"election timeout {settings.ElectionTimeoutMs} ms");
        await progress
            .WriteLineAsync(header + timeout + ", every peer pair and client path through its own proxy" + bug)
            .ConfigureAwait(false);
    }

    private static async Task StartAsync(ProcessCluster cluster, string outDirectory, TextWriter progress)
    {
        cluster.StartAll();
        try
        {
            await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            var reports = await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            await progress
                .WriteLineAsync(
                    "chaos: no agreed leader at start: "
                        + string.Join(
                            "; ",
                            reports.Select(r =>
                                FormattableString.Invariant($"{r.ReplicaId}: {r.Role} term {r.Term.Value} leader {r.LeaderId}")
                            )
                        )
                )
                .ConfigureAwait(false);
            CopyLogs(cluster, outDirectory);
            throw;
        }
    }

    private static async Task InjectFaultsAsync(
        ChaosSettings settings,
        ChaosWorkload workload,
        ChaosNemesis nemesis,
        TextWriter progress,
        CancellationToken token
    )
    {
        try
        {
            await nemesis.RunAsync(TimeSpan.FromSeconds(settings.Seconds), token).ConfigureAwait(false);
            await progress.WriteLineAsync("chaos: faults over; final heal").ConfigureAwait(false);
            await nemesis.HealAsync(null, token).ConfigureAwait(false);
            await Task.Delay(TimeSpan.FromSeconds(2), token).ConfigureAwait(false);
        }
        finally
        {
            await workload.StopAsync().ConfigureAwait(false);
        }
    }

    private static async Task CheckConvergenceAsync(ProcessCluster cluster, ChaosSettings settings, ChaosOutcome outcome)
    {
        outcome.Converged = await cluster.WaitForConvergenceAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        if (outcome.Converged is null || outcome.Converged.Count != settings.Replicas)
        {
            var reports = await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            outcome.Reasons.Add(
                "replicas did not converge to one digest at one applied index within 60 s: "
                    + string.Join(
                        "; ",
                        reports.Select(r =>
                            FormattableString.Invariant(
                                $"{r.ReplicaId}: applied {r.AppliedIndex.Value} commit {r.CommitIndex.Value} digest {r.Digest}"
                            )
                        )
                    )
            );
        }
    }

    private static async Task ReadBackAsync(ChaosWorkload workload, ChaosOutcome outcome, TextWriter progress)
    {
        (outcome.Missing, var unreadable) = await workload.ReadBackAsync(4, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        outcome.Unreadable = unreadable.Count;
        await progress
            .WriteLineAsync(
                FormattableString.Invariant($"chaos: read back {workload.AckedSetWrites} acknowledged set writes: ")
                    + FormattableString.Invariant($"{outcome.Missing.Count} missing, {unreadable.Count} unreadable")
            )
            .ConfigureAwait(false);
        if (outcome.Missing.Count > 0)
        {
            outcome.Reasons.Add(
                FormattableString.Invariant(
                    $"{outcome.Missing.Count} acknowledged writes are missing, e.g. {string.Join("; ", outcome.Missing.Take(5))}"
                )
            );
        }

        if (unreadable.Count > 0)
        {
            outcome.Reasons.Add(FormattableString.Invariant($"{unreadable.Count} acknowledged writes could not be read back within 60 s"));
        }
    }

    private static async Task CheckHistoryAsync(ChaosWorkload workload, ChaosOutcome outcome, string outDirectory, TextWriter progress)
    {
        var history = workload.History();
        HistoryFile.Write(Path.Combine(outDirectory, "history.jsonl"), history);
        await progress
            .WriteLineAsync(
                FormattableString.Invariant(
                    $"chaos: checking {history.Count} operations (budget {outcome.Settings.CheckBudget.TotalSeconds:F0} s)"
                )
            )
            .ConfigureAwait(false);
        var check = LinearizabilityChecker.Check(history, outcome.Settings.CheckBudget);
        outcome.Check = check;
        var checkText = check.Describe();
        await File.WriteAllTextAsync(Path.Combine(outDirectory, "check.txt"), checkText, CancellationToken.None).ConfigureAwait(false);
        if (check.Verdict == CheckVerdict.NotLinearizable)
        {
            outcome.Reasons.Add("history is not linearizable (key '" + check.FailingKey + "', see check.txt)");
            await progress.WriteAsync(checkText).ConfigureAwait(false);
        }
        else if (check.Verdict != CheckVerdict.Linearizable)
        {
            outcome.Reasons.Add("the linearizability check was inconclusive within its budget");
        }
    }

    private static void CopyLogs(ProcessCluster cluster, string outDirectory)
    {
        foreach (var id in cluster.Ids)
        {
            File.WriteAllText(Path.Combine(outDirectory, "replica-" + id.ToString() + ".log"), cluster.LogTail(id, 20_000));
        }
    }
}
