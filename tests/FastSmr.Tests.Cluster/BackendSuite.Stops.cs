using System.Collections.Concurrent;
using FastSmr.Client;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;

/// <summary>The suite's replica processes: SIGTERM under load, again and again.</summary>
public abstract partial class BackendSuite
{
    /// <summary>
    /// Issue 13: on d9a8542, 3 of 9 SIGTERMs of a serve process ended in exit code 134 (an ObjectDisposedException in
    /// the signal handler). Every replica is stopped three times while a client writes; each stop must end in exit
    /// code 0, and every acknowledged write must still be there at the end.
    /// </summary>
    [Fact]
    public async Task Sigterm_UnderLoad_StopsCleanly_WithExitCode0_EveryTime()
    {
        await using var cluster = new ProcessCluster(3, Programs.Fastsmr, Backend, DurabilityMode.Durable);
        cluster.StartAll();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60));
        var acknowledged = new ConcurrentBag<int>();
        using var stopLoad = new CancellationTokenSource();
        var load = WriteUntilAsync(cluster, acknowledged, stopLoad.Token);
        var stops = 0;
        for (var round = 0; round < 3; round++)
        {
            foreach (var id in cluster.Ids)
            {
                var code = await cluster.StopAsync(id, TimeSpan.FromSeconds(20));
                Assert.True(code == 0, $"replica {id} ended with exit code {code} in round {round}:\n{cluster.LogTail(id, 15)}");
                stops++;
                cluster.Start(id);
                await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60));
            }
        }

        await stopLoad.CancelAsync();
        var written = await load;
        output.WriteLine($"{stops} stops, all with exit code 0; {acknowledged.Count} of {written} writes acknowledged meanwhile");
        Assert.False(acknowledged.IsEmpty, "no write was acknowledged while replicas were stopped and restarted");
        await AssertAllPresentAsync(cluster, acknowledged);
    }

    /// <summary>
    /// Issue 13: on d9a8542 a replica restarted with a wrong member list formed a cluster of its own, and two leaders
    /// acknowledged writes at once. Its data directory now remembers the cluster it belongs to.
    /// </summary>
    [Fact]
    public async Task ARestartWithAnotherMemberList_IsRefused_WithExitCode2()
    {
        await using var cluster = new ProcessCluster(3, Programs.Fastsmr, Backend, DurabilityMode.Durable);
        cluster.StartAll();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60));
        var id = cluster.Ids[2];
        Assert.Equal(0, await cluster.StopAsync(id, TimeSpan.FromSeconds(20)));
        var alone = id + "=" + cluster.RaftEndPoint(id) + "/" + cluster.ClientEndPoint(id);
        var data = Path.Combine(cluster.Directory, "replica-" + id);
        var (exitCode, _, errors) = await FastsmrProcess.RunWithErrorsAsync(
            output,
            TimeSpan.FromMinutes(1),
            "serve", "--id", id.ToString(), "--members", alone, "--data", data,
            "--cluster-id", cluster.ClusterId.ToString(System.Globalization.CultureInfo.InvariantCulture), "--backend", Testing.Names.Of(Backend),
            "--certs", cluster.Certificates!
        );
        Assert.Equal(2, exitCode);
        Assert.Contains("this data directory belongs to cluster", errors, StringComparison.Ordinal);

        // With its real member list it starts and rejoins.
        cluster.Start(id);
        await cluster.ConvergeAsync(TimeSpan.FromSeconds(60));
    }

    /// <summary>Puts keys "s-N" one after the other until cancelled; returns how many were sent.</summary>
    private static async Task<int> WriteUntilAsync(ProcessCluster cluster, ConcurrentBag<int> acknowledged, CancellationToken stop)
    {
        await using var client = new FastSmrClient(new FastSmrClientOptions { EndPoints = cluster.ClientEndPoints, DefaultTimeout = TimeSpan.FromSeconds(5) }.Secured(((IReplicaCluster)cluster).ClientTls));
        var sent = 0;
        while (!stop.IsCancellationRequested)
        {
            var i = sent++;
            var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("s-" + i), Kv.Key("v" + i)));
            if (result.Status == SubmitStatus.Ok)
            {
                acknowledged.Add(i);
            }
        }

        return sent;
    }

    /// <summary>Reads every acknowledged key "s-N" back (16 readers at once) and fails naming the ones that are gone.</summary>
    private static async Task AssertAllPresentAsync(ProcessCluster cluster, IEnumerable<int> keys)
    {
        await using var reader = new FastSmrClient(new FastSmrClientOptions { EndPoints = cluster.RunningClientEndPoints, DefaultTimeout = TimeSpan.FromSeconds(10) }.Secured(((IReplicaCluster)cluster).ClientTls));
        var missing = new ConcurrentBag<int>();
        await Parallel.ForEachAsync(
            keys,
            new ParallelOptions { MaxDegreeOfParallelism = 16 },
            async (i, _) =>
            {
                var read = await reader.ReadAsync(KvCommand.Get(Kv.Key("s-" + i)));
                if (read.Status != SubmitStatus.Ok || Kv.Result(read.Output) != KvResult.Ok || Kv.Text(read.Output) != "v" + i)
                {
                    missing.Add(i);
                }
            }
        );
        Assert.True(missing.IsEmpty, $"{missing.Count} acknowledged writes are gone: {string.Join(",", missing.Order().Take(20))}");
    }
}
