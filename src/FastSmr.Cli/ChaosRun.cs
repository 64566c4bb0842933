using System.Globalization;
using System.Text.Json;
using FastSmr.Verification;

namespace FastSmr.Cli;

/// <summary>Settings of one <c>fastsmr chaos</c> run.</summary>
internal sealed record ChaosSettings
{
    public int Seconds { get; init; } = 60;

    public int Seed { get; init; } = 1;

    public int Replicas { get; init; } = 3;

    public string Backend { get; init; } = "dotnext";

    public string Durability { get; init; } = "durable";

    public string OutDirectory { get; init; } = "chaos-results";

    /// <summary>TEST ONLY: a fault every replica injects (see <c>ServerOptions.InjectBug</c>); the run must then FAIL.</summary>
    public string? InjectBug { get; init; }

    /// <summary>The lower election timeout; ≥ 1 s survives CPU starvation of 2 cores shared by the whole run.</summary>
    public int ElectionTimeoutMs { get; init; } = 1_000;

    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Register clients; 0 means two per replica.</summary>
    public int RegisterClients { get; init; }

    public int SetClients { get; init; } = 2;

    public int KeySlots { get; init; } = 4;

    public int OperationsPerKey { get; init; } = 40;

    /// <summary>The least share of operations that must succeed for the run to count as having tested something.</summary>
    public double MinOkShare { get; init; } = 0.2;

    public TimeSpan CheckBudget { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long after a heal a write must be acknowledged again.</summary>
    public TimeSpan RecoveryMax { get; init; } = TimeSpan.FromSeconds(20);
}

/// <summary>
/// <c>fastsmr chaos</c>: replicas as processes behind per-pair proxies, register and set clients, a seeded nemesis, then
/// heal, quiet, convergence, read-back of every acknowledged set write, and the linearizability check of the history.
/// Every process it started is stopped whatever happens.
/// </summary>
internal static class ChaosRun
{
    /// <returns>Whether the run passed.</returns>
    public static async Task<bool> RunAsync(ChaosSettings settings, TextWriter progress, CancellationToken token)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var outDirectory = Path.GetFullPath(settings.OutDirectory);
        Directory.CreateDirectory(outDirectory);
        var reasons = new List<string>();
        string[] serveArguments =
        [
            "--election-timeout-ms", settings.ElectionTimeoutMs.ToString(CultureInfo.InvariantCulture),
            "--log-level", "Information",
            .. settings.InjectBug is null ? Array.Empty<string>() : ["--inject-bug", settings.InjectBug],
        ];
        var cluster = new LocalProcessCluster(settings.Replicas, settings.Backend, settings.Durability, clusterId: (ulong)(uint)settings.Seed + 1, extraServeArguments: serveArguments);
        await using var clusterScope = cluster.ConfigureAwait(false);
        var topology = ChaosTopology.Create(cluster);
        await using var topologyScope = topology.ConfigureAwait(false);
        var started = ChaosWorkload.Now();
        await progress.WriteLineAsync(FormattableString.Invariant($"chaos: seed {settings.Seed}, {settings.Seconds} s, {settings.Replicas} {settings.Backend} replicas ({settings.Durability}), election timeout {settings.ElectionTimeoutMs} ms, every peer pair and client path through its own proxy{(settings.InjectBug is null ? "" : ", INJECTED BUG " + settings.InjectBug)}")).ConfigureAwait(false);
        cluster.StartAll();
        try
        {
            await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException)
        {
            var reports = await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            await progress.WriteLineAsync("chaos: no agreed leader at start: " + string.Join("; ", reports.Select(r => FormattableString.Invariant($"{r.ReplicaId}: {r.Role} term {r.Term.Value} leader {r.LeaderId}")))).ConfigureAwait(false);
            CopyLogs(cluster, outDirectory);
            throw;
        }

        var registerClients = settings.RegisterClients > 0 ? settings.RegisterClients : 2 * settings.Replicas;
        var workload = new ChaosWorkload(cluster.AdvertisedClientEndPoints, cluster.ClusterId, settings.Seed, settings.OperationTimeout, settings.KeySlots, settings.OperationsPerKey);
        workload.Start(registerClients, settings.SetClients);
        var nemesis = new ChaosNemesis(cluster, topology, workload, settings.Seed, settings.RecoveryMax, progress);
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

        var converged = await cluster.WaitForConvergenceAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        if (converged is null || converged.Count != settings.Replicas)
        {
            var reports = await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
            reasons.Add("replicas did not converge to one digest at one applied index within 60 s: " + string.Join("; ", reports.Select(r => FormattableString.Invariant($"{r.ReplicaId}: applied {r.AppliedIndex.Value} commit {r.CommitIndex.Value} digest {r.Digest}"))));
        }

        var (missing, unreadable) = await workload.ReadBackAsync(4, TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        await progress.WriteLineAsync(FormattableString.Invariant($"chaos: read back {workload.AckedSetWrites} acknowledged set writes: {missing.Count} missing, {unreadable.Count} unreadable")).ConfigureAwait(false);
        if (missing.Count > 0)
        {
            reasons.Add(FormattableString.Invariant($"{missing.Count} acknowledged writes are missing, e.g. {string.Join("; ", missing.Take(5))}"));
        }

        if (unreadable.Count > 0)
        {
            reasons.Add(FormattableString.Invariant($"{unreadable.Count} acknowledged writes could not be read back within 60 s"));
        }

        foreach (var id in cluster.Crashed)
        {
            reasons.Add("replica " + id.ToString(CultureInfo.InvariantCulture) + " exited on its own: " + cluster.LogTail(id, 10));
        }

        var history = workload.History();
        HistoryFile.Write(Path.Combine(outDirectory, "history.jsonl"), history);
        await progress.WriteLineAsync(FormattableString.Invariant($"chaos: checking {history.Count} operations (budget {settings.CheckBudget.TotalSeconds:F0} s)")).ConfigureAwait(false);
        var check = LinearizabilityChecker.Check(history, settings.CheckBudget);
        var checkText = check.Describe();
        await File.WriteAllTextAsync(Path.Combine(outDirectory, "check.txt"), checkText, CancellationToken.None).ConfigureAwait(false);
        if (check.Verdict == CheckVerdict.NotLinearizable)
        {
            reasons.Add("history is not linearizable (key '" + check.FailingKey + "', see check.txt)");
            await progress.WriteAsync(checkText).ConfigureAwait(false);
        }
        else if (check.Verdict != CheckVerdict.Linearizable)
        {
            reasons.Add("the linearizability check was inconclusive within its budget");
        }

        var total = workload.Ok + workload.Failed + workload.Unknown;
        var okShare = total == 0 ? 0 : workload.Ok / (double)total;
        if (okShare < settings.MinOkShare)
        {
            reasons.Add(FormattableString.Invariant($"only {okShare:P0} of {total} operations succeeded (at least {settings.MinOkShare:P0} needed to count as a test)"));
        }

        if (workload.DeadlineOverruns > 0)
        {
            reasons.Add(FormattableString.Invariant($"{workload.DeadlineOverruns} operations outlived their deadline by more than 1 s (worst by {workload.WorstOverrun.TotalMilliseconds:F0} ms)"));
        }

        reasons.AddRange(nemesis.Problems);
        foreach (var kind in nemesis.Planned.Where(k => !nemesis.Injected.ContainsKey(k)))
        {
            reasons.Add("scheduled fault " + kind.Name() + " was never injected");
        }

        var pass = reasons.Count == 0;
        var faults = string.Join(',', nemesis.Injected.OrderBy(p => p.Key).Select(p => p.Key.Name() + ":" + p.Value.ToString(CultureInfo.InvariantCulture)));
        var verdict = FormattableString.Invariant($"chaos: {(pass ? "PASS" : "FAIL")} seed={settings.Seed} ops={total} unknown={workload.Unknown} faults={faults} ok={workload.Ok}");
        if (!pass)
        {
            verdict += " reasons: " + string.Join(" | ", reasons);
        }

        CopyLogs(cluster, outDirectory);

        var report = new Dictionary<string, object?>
        {
            ["verdict"] = pass ? "PASS" : "FAIL",
            ["reasons"] = reasons,
            ["seed"] = settings.Seed,
            ["seconds"] = settings.Seconds,
            ["replicas"] = settings.Replicas,
            ["backend"] = settings.Backend,
            ["durability"] = settings.Durability,
            ["injectedBug"] = settings.InjectBug,
            ["settings"] = new Dictionary<string, object>
            {
                ["electionTimeoutMs"] = settings.ElectionTimeoutMs,
                ["operationTimeoutMs"] = settings.OperationTimeout.TotalMilliseconds,
                ["registerClients"] = registerClients,
                ["setClients"] = settings.SetClients,
                ["keySlots"] = settings.KeySlots,
                ["operationsPerKey"] = settings.OperationsPerKey,
                ["minOkShare"] = settings.MinOkShare,
            },
            ["operations"] = new Dictionary<string, object>
            {
                ["total"] = total,
                ["ok"] = workload.Ok,
                ["fail"] = workload.Failed,
                ["unknown"] = workload.Unknown,
                ["byClientStatus"] = workload.Statuses,
                ["deadlineOverruns"] = workload.DeadlineOverruns,
            },
            ["setWrites"] = new Dictionary<string, object>
            {
                ["acknowledged"] = workload.AckedSetWrites,
                ["unknown"] = workload.UnknownSetWrites,
                ["missing"] = missing,
                ["unreadable"] = unreadable.Count,
            },
            ["faults"] = nemesis.Injected.ToDictionary(p => p.Key.Name(), p => p.Value),
            ["heals"] = nemesis.Heals,
            ["check"] = new Dictionary<string, object?>
            {
                ["verdict"] = check.Verdict.ToString(),
                ["operations"] = check.Operations,
                ["keys"] = check.Keys,
                ["elapsedMs"] = Math.Round(check.Elapsed.TotalMilliseconds),
                ["failingKey"] = check.FailingKey,
            },
            ["converged"] = converged is null ? null : new Dictionary<string, object>
            {
                ["appliedIndex"] = converged[0].AppliedIndex.Value,
                ["digest"] = converged[0].Digest.ToString(),
            },
            ["wallSeconds"] = Math.Round((ChaosWorkload.Now() - started) / 1e9, 1),
            ["note"] = "kill -9 leaves the page cache intact, so these runs cannot show a missing fsync; power-loss durability needs another test",
            ["machine"] = MachineInfo.Describe(),
            ["commit"] = MachineInfo.Commit(),
            ["measuredAt"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
        };
        var reportStream = File.Create(Path.Combine(outDirectory, "report.json"));
        await using (reportStream.ConfigureAwait(false))
        {
            await JsonSerializer.SerializeAsync(reportStream, report, JsonOptions, CancellationToken.None).ConfigureAwait(false);
        }

        await progress.WriteLineAsync("chaos: note: kill -9 leaves the page cache intact, so no chaos run can show a missing fsync").ConfigureAwait(false);
        await progress.WriteLineAsync(verdict).ConfigureAwait(false);
        return pass;
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    private static void CopyLogs(LocalProcessCluster cluster, string outDirectory)
    {
        foreach (var id in cluster.Ids)
        {
            File.WriteAllText(Path.Combine(outDirectory, "replica-" + id.ToString(CultureInfo.InvariantCulture) + ".log"), cluster.LogTail(id, 20_000));
        }
    }
}
