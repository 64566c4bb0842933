namespace FastSmr.Cli;

/// <summary>
/// <c>fastsmr demo</c>: starts replicas as processes on 127.0.0.1, waits for a leader, runs the KV load with a live
/// progress line, prints the table, checks convergence through the status frame, stops every process and deletes the
/// temporary directory. Exit code 0 only when all of that holds.
/// </summary>
internal static class DemoCommand
{
    public static async Task<int> RunAsync(LoadSettings settings, int replicas, string backend, string durability, string? jsonPath, bool keep, IReadOnlyList<string> serveArguments, CancellationToken token)
    {
        var output = Console.Out;
        var cluster = new LocalProcessCluster(replicas, backend, durability, settings.ClusterId, extraServeArguments: serveArguments, keepDirectory: keep);
        var ok = false;
        try
        {
            await output.WriteLineAsync(FormattableString.Invariant($"fastsmr demo: starting {replicas} replicas ({backend}, {durability}) in {cluster.Directory}")).ConfigureAwait(false);
            cluster.StartAll();
            var leader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60)).ConfigureAwait(false);
            await output.WriteLineAsync(FormattableString.Invariant($"fastsmr demo: replica {leader.ReplicaId} leads in term {leader.Term}; running {settings.Seconds} s of load after 1 s of warm-up")).ConfigureAwait(false);

            var generator = new LoadGenerator(settings, cluster.ClientEndPoints, output);
            var warmup = TimeSpan.FromSeconds(1);
            var before = await ClusterProbe.LeaderAllocationAsync(cluster.RunningClientEndPoints, cluster.ClusterId).ConfigureAwait(false);
            var load = await generator.RunAsync(warmup, token).ConfigureAwait(false);
            var after = await ClusterProbe.LeaderAllocationAsync(cluster.RunningClientEndPoints, cluster.ClusterId).ConfigureAwait(false);
            double? allocPerCmd = before is { } b && after is { } a && a.Id == b.Id && load.Ops > 0 ? (a.Bytes - b.Bytes) / (double)load.Ops : null;

            await output.WriteLineAsync("fastsmr demo: load done; waiting for every replica to reach the same applied index and digest").ConfigureAwait(false);
            var converged = await cluster.WaitForConvergenceAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
            RunReport.PrintTable(output, load, settings, backend, durability, converged is not null, allocPerCmd);
            if (converged is not null)
            {
                foreach (var status in converged)
                {
                    await output.WriteLineAsync(FormattableString.Invariant($"  replica {status.ReplicaId}: {status.Role,-8} term {status.Term}  applied {status.AppliedIndex}  digest {status.Digest}")).ConfigureAwait(false);
                }
            }
            else
            {
                foreach (var status in await cluster.StatusesAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false))
                {
                    await output.WriteLineAsync(FormattableString.Invariant($"  replica {status.ReplicaId}: {status.Role,-8} term {status.Term}  commit {status.CommitIndex}  applied {status.AppliedIndex}  digest {status.Digest}")).ConfigureAwait(false);
                }
            }

            if (jsonPath is not null)
            {
                var report = RunReport.From(load, settings, backend, durability, replicas, converged is not null, allocPerCmd);
                report.Settings["serve_arguments"] = string.Join(' ', serveArguments);
                report.Settings["runtime_environment"] = RunReport.RuntimeEnvironment();
                await report.WriteAsync(jsonPath).ConfigureAwait(false);
                await output.WriteLineAsync("fastsmr demo: wrote " + jsonPath).ConfigureAwait(false);
            }

            ok = converged is not null && load.Ops > 0;
            if (load.Ops == 0)
            {
                await Console.Error.WriteLineAsync("fastsmr demo: FAILED: no operation committed").ConfigureAwait(false);
            }
            else if (converged is null)
            {
                await Console.Error.WriteLineAsync("fastsmr demo: FAILED: replicas did not converge to one digest at one applied index").ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is TimeoutException or InvalidOperationException or IOException)
        {
            await Console.Error.WriteLineAsync("fastsmr demo: FAILED: " + e.Message).ConfigureAwait(false);
            foreach (var id in cluster.Ids)
            {
                await Console.Error.WriteLineAsync(FormattableString.Invariant($"--- replica {id} log tail ---\n{cluster.LogTail(id)}")).ConfigureAwait(false);
            }
        }
        finally
        {
            await output.WriteLineAsync("fastsmr demo: stopping replicas").ConfigureAwait(false);
            await cluster.DisposeAsync().ConfigureAwait(false);
            var removed = keep || !Directory.Exists(cluster.Directory);
            if (!removed)
            {
                await Console.Error.WriteLineAsync("fastsmr demo: could not delete " + cluster.Directory).ConfigureAwait(false);
                ok = false;
            }
        }

        await output.WriteLineAsync(ok ? "fastsmr demo: OK" : "fastsmr demo: FAILED").ConfigureAwait(false);
        return ok ? 0 : 1;
    }
}
