using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Server;
using FastSmr.Testing.Clusters;

namespace FastSmr.Testing.Load;

/// <summary>What <c>fastsmr demo</c> runs: the cluster's shape and the replicas' extra arguments, besides the load.</summary>
public sealed record DemoSettings
{
    /// <summary>The load offered.</summary>
    public required LoadSettings Load { get; init; }

    /// <summary>Replica processes (odd, 1-9).</summary>
    public int Replicas { get; init; } = 3;

    /// <summary>The back-end every replica runs.</summary>
    public BackendKind Backend { get; init; } = BackendKind.DotNext;

    /// <summary>The durability mode every replica runs in.</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.Durable;

    /// <summary>Keep the temporary data directory.</summary>
    public bool KeepDirectory { get; init; }

    /// <summary>Runs the replicas and the clients in plaintext (<c>--insecure</c>) instead of mutual TLS.</summary>
    public bool Insecure { get; init; }

    /// <summary>Extra arguments for every replica's <c>serve</c>.</summary>
    public IReadOnlyList<string> ServeArguments { get; init; } = [];

    /// <summary>Where to write the JSON report; null writes none.</summary>
    public string? JsonPath { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> with the reason when the settings cannot run.</summary>
    public void Validate()
    {
        Load.Validate();
        if (Replicas is < 1 or > 9)
        {
            throw new ArgumentException("--replicas must be 1..9");
        }
    }
}

/// <summary>
/// <c>fastsmr demo</c>: starts replicas as processes on 127.0.0.1, waits for a leader, runs the KV load with a live
/// progress line, prints the table, checks convergence through the status frame, stops every process and deletes the
/// temporary directory. Exit code 0 only when all of that holds.
/// </summary>
public static class DemoRun
{
    /// <summary>Runs the demo; returns the process exit code (0 only when load committed and the replicas converged).</summary>
    public static async Task<int> RunAsync(
        DemoSettings settings,
        ReplicaLauncher launcher,
        TextWriter output,
        TextWriter error,
        CancellationToken token
    )
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(output);
        ArgumentNullException.ThrowIfNull(error);
        var cluster = new ProcessCluster(
            settings.Replicas,
            launcher,
            settings.Backend,
            settings.Durability,
            settings.Load.ClusterId,
            settings.ServeArguments,
            settings.KeepDirectory,
            settings.Insecure
        );
        var ok = false;
        try
        {
            ok = await LoadAndCheckAsync(settings, cluster, output, error, token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
        {
            await error.WriteLineAsync("fastsmr demo: FAILED: " + e.Message).ConfigureAwait(false);
            foreach (var id in cluster.Ids)
            {
                await error
                    .WriteLineAsync(FormattableString.Invariant($"--- replica {id} log tail ---\n{cluster.LogTail(id)}"))
                    .ConfigureAwait(false);
            }
        }
        finally
        {
            await output.WriteLineAsync("fastsmr demo: stopping replicas").ConfigureAwait(false);
            await cluster.DisposeAsync().ConfigureAwait(false);
            if (!settings.KeepDirectory && Directory.Exists(cluster.Directory))
            {
                await error.WriteLineAsync("fastsmr demo: could not delete " + cluster.Directory).ConfigureAwait(false);
                ok = false;
            }
        }

        await output.WriteLineAsync(ok ? "fastsmr demo: OK" : "fastsmr demo: FAILED").ConfigureAwait(false);
        return ok ? 0 : 1;
    }

    private static async Task<bool> LoadAndCheckAsync(
        DemoSettings settings,
        ProcessCluster cluster,
        TextWriter output,
        TextWriter error,
        CancellationToken token
    )
    {
        var (backend, durability) = (Names.Of(settings.Backend), Names.Of(settings.Durability));
        await output
            .WriteLineAsync(
                FormattableString.Invariant(
                    $"fastsmr demo: starting {settings.Replicas} replicas ({backend}, {durability}) in {cluster.Directory}"
                )
            )
            .ConfigureAwait(false);
        cluster.StartAll();
        settings = settings with { Load = settings.Load with { Tls = ((IReplicaCluster)cluster).ClientTls } };
        var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
        await output
            .WriteLineAsync(
                FormattableString.Invariant($"fastsmr demo: replica {leader.ReplicaId} leads in term {leader.Term}; ")
                    + FormattableString.Invariant($"running {settings.Load.Seconds} s of load after 1 s of warm-up")
            )
            .ConfigureAwait(false);

        var measured = await MeasuredLoad
            .RunAsync(settings.Load, cluster.ClientEndPoints, () => cluster.RunningClientEndPoints, output, token)
            .ConfigureAwait(false);
        await output
            .WriteLineAsync("fastsmr demo: load done; waiting for every replica to reach the same applied index and digest")
            .ConfigureAwait(false);
        var converged = await cluster.WaitForConvergenceAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        RunReport.PrintTable(
            output,
            measured.Load,
            settings.Load,
            settings.Backend,
            settings.Durability,
            converged is not null,
            measured.LeaderAllocationPerCommand
        );
        await PrintStatusesAsync(converged ?? await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false), output)
            .ConfigureAwait(false);
        if (settings.JsonPath is { } jsonPath)
        {
            await WriteReportAsync(settings, measured, converged is not null, jsonPath).ConfigureAwait(false);
            await output.WriteLineAsync("fastsmr demo: wrote " + jsonPath).ConfigureAwait(false);
        }

        if (measured.Load.Ops == 0)
        {
            await error.WriteLineAsync("fastsmr demo: FAILED: no operation committed").ConfigureAwait(false);
        }
        else if (converged is null)
        {
            await error
                .WriteLineAsync("fastsmr demo: FAILED: replicas did not converge to one digest at one applied index")
                .ConfigureAwait(false);
        }

        return converged is not null && measured.Load.Ops > 0;
    }

    private static async Task PrintStatusesAsync(List<StatusReport> statuses, TextWriter output)
    {
        foreach (var status in statuses)
        {
            var indexes = FormattableString.Invariant($"commit {status.CommitIndex}  applied {status.AppliedIndex}");
            var line = FormattableString.Invariant($"  replica {status.ReplicaId}: {status.Role, -8} term {status.Term}  {indexes}");
            await output.WriteLineAsync(line + "  digest " + status.Digest).ConfigureAwait(false);
        }
    }

    private static Task WriteReportAsync(DemoSettings settings, MeasuredLoad measured, bool converged, string jsonPath)
    {
        var report = RunReport.From(
            measured.Load,
            settings.Load,
            settings.Backend,
            settings.Durability,
            settings.Replicas,
            converged,
            measured.LeaderAllocationPerCommand
        );
        report.Settings["serve_arguments"] = string.Join(' ', settings.ServeArguments);
        report.Settings["runtime_environment"] = RunReport.RuntimeEnvironment();
        return report.WriteAsync(jsonPath);
    }
}
