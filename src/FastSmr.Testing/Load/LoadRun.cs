using FastSmr.Engine;
using FastSmr.Server;
using FastSmr.Testing.Clusters;

namespace FastSmr.Testing.Load;

/// <summary>A load run and the leader's allocations per committed command measured around it.</summary>
/// <param name="Load">What the load generator measured.</param>
/// <param name="LeaderAllocationPerCommand">Bytes the leader's process allocated per committed command; null when the
/// leader changed or did not answer.</param>
internal sealed record MeasuredLoad(LoadReport Load, double? LeaderAllocationPerCommand)
{
    /// <summary>Runs the load after 1 s of warm-up, reading the leader's allocation counter before and after.</summary>
    public static async Task<MeasuredLoad> RunAsync(
        LoadSettings settings,
        IReadOnlyList<string> endPoints,
        Func<IReadOnlyList<string>> probeEndPoints,
        TextWriter output,
        CancellationToken token
    )
    {
        var before = await ClusterProbe.LeaderAllocationAsync(probeEndPoints(), settings.ClusterId, settings.Tls).ConfigureAwait(false);
        var load = await new LoadGenerator(settings, endPoints, output).RunAsync(TimeSpan.FromSeconds(1), token).ConfigureAwait(false);
        var after = await ClusterProbe.LeaderAllocationAsync(probeEndPoints(), settings.ClusterId, settings.Tls).ConfigureAwait(false);
        double? perCommand =
            before is { } b && after is { } a && a.Id == b.Id && load.Ops > 0 ? (a.Bytes - b.Bytes) / (double)load.Ops : null;
        return new MeasuredLoad(load, perCommand);
    }
}

/// <summary><c>fastsmr loadgen</c>: the demo's load against a cluster that is already running.</summary>
public static class LoadRun
{
    /// <summary>
    /// Runs the load, prints the table and writes the JSON report; returns 0 when load committed and the replicas
    /// converged.
    /// </summary>
    /// <param name="settings">The load.</param>
    /// <param name="endPoints">The replicas' client endpoints.</param>
    /// <param name="backend">The back-end the cluster runs (for the report only).</param>
    /// <param name="durability">The durability mode the cluster runs in (for the report only).</param>
    /// <param name="jsonPath">Where to write the JSON report; null writes none.</param>
    /// <param name="output">Progress and the table.</param>
    /// <param name="token">Stops the run.</param>
    public static async Task<int> RunAsync(
        LoadSettings settings,
        IReadOnlyList<string> endPoints,
        BackendKind backend,
        DurabilityMode durability,
        string? jsonPath,
        TextWriter output,
        CancellationToken token
    )
    {
        ArgumentNullException.ThrowIfNull(settings);
        ArgumentNullException.ThrowIfNull(endPoints);
        ArgumentNullException.ThrowIfNull(output);
        await output
            .WriteLineAsync(
                FormattableString.Invariant($"fastsmr loadgen: {endPoints.Count} endpoint(s), {settings.Clients} ")
                    + FormattableString.Invariant($"client(s) x {settings.Pipeline}, {settings.Seconds} s after 1 s of warm-up")
            )
            .ConfigureAwait(false);
        var measured = await MeasuredLoad.RunAsync(settings, endPoints, () => endPoints, output, token).ConfigureAwait(false);
        var converged = await ClusterProbe
            .WaitForConvergenceAsync(() => endPoints, settings.ClusterId, TimeSpan.FromSeconds(30), settings.Tls)
            .ConfigureAwait(false);
        RunReport.PrintTable(
            output,
            measured.Load,
            settings,
            backend,
            durability,
            converged is not null,
            measured.LeaderAllocationPerCommand
        );
        if (jsonPath is not null)
        {
            await RunReport
                .From(
                    measured.Load,
                    settings,
                    backend,
                    durability,
                    endPoints.Count,
                    converged is not null,
                    measured.LeaderAllocationPerCommand
                )
                .WriteAsync(jsonPath)
                .ConfigureAwait(false);
            await output.WriteLineAsync("fastsmr loadgen: wrote " + jsonPath).ConfigureAwait(false);
        }

        return measured.Load.Ops > 0 && converged is not null ? 0 : 1;
    }
}
