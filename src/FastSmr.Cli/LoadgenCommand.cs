namespace FastSmr.Cli;

/// <summary><c>fastsmr loadgen</c>: the demo's load against a cluster that is already running.</summary>
internal static class LoadgenCommand
{
    public static async Task<int> RunAsync(LoadSettings settings, IReadOnlyList<string> endPoints, string backend, string durability, string? jsonPath, CancellationToken token)
    {
        var output = Console.Out;
        await output.WriteLineAsync(FormattableString.Invariant($"fastsmr loadgen: {endPoints.Count} endpoint(s), {settings.Clients} client(s) x {settings.Pipeline}, {settings.Seconds} s after 1 s of warm-up")).ConfigureAwait(false);
        var before = await ClusterProbe.LeaderAllocationAsync(endPoints, settings.ClusterId).ConfigureAwait(false);
        var load = await new LoadGenerator(settings, endPoints, output).RunAsync(TimeSpan.FromSeconds(1), token).ConfigureAwait(false);
        var after = await ClusterProbe.LeaderAllocationAsync(endPoints, settings.ClusterId).ConfigureAwait(false);
        double? allocPerCmd = before is { } b && after is { } a && a.Id == b.Id && load.Ops > 0 ? (a.Bytes - b.Bytes) / (double)load.Ops : null;
        var converged = await ClusterProbe.WaitForConvergenceAsync(() => endPoints, settings.ClusterId, TimeSpan.FromSeconds(30)).ConfigureAwait(false);
        RunReport.PrintTable(output, load, settings, backend, durability, converged is not null, allocPerCmd);
        if (jsonPath is not null)
        {
            await RunReport.From(load, settings, backend, durability, endPoints.Count, converged is not null, allocPerCmd).WriteAsync(jsonPath).ConfigureAwait(false);
            await output.WriteLineAsync("fastsmr loadgen: wrote " + jsonPath).ConfigureAwait(false);
        }

        return load.Ops > 0 && converged is not null ? 0 : 1;
    }
}
