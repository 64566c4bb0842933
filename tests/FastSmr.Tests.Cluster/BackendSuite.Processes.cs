using System.Diagnostics;
using FastSmr.Client;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;

/// <summary>The suite's replica processes: kill -9 and restart.</summary>
public abstract partial class BackendSuite
{
    [Fact]
    public async Task KilledFollower_KeepsEveryEntryItAcknowledged()
    {
        await using var cluster = new ProcessCluster(3, Programs.Fastsmr, Backend, DurabilityMode.Durable);
        cluster.StartAll();
        var leader = (await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60))).ReplicaId;
        var followers = cluster.Ids.Where(id => id != leader).ToArray();
        var keeper = followers[0];
        var other = followers[1];

        // With the other follower down, every commit needs the keeper's acknowledgement.
        await cluster.StopAsync(other, TimeSpan.FromSeconds(10));
        const int Keys = 150;
        await using (var client = new FastSmrClient(new FastSmrClientOptions { EndPoints = cluster.ClientEndPoints, DefaultTimeout = TimeSpan.FromSeconds(10) }.Secured(((IReplicaCluster)cluster).ClientTls)))
        {
            var writes = Enumerable.Range(0, Keys).Select(async i =>
            {
                var sw = Stopwatch.StartNew();
                var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("durable-" + i), Kv.Key("v" + i)));
                return (result.Status, result.Attempts, sw.ElapsedMilliseconds);
            });
            var results = await Task.WhenAll(writes);
            foreach (var g in results.GroupBy(r => (r.Status, r.Attempts)))
            {
                output.WriteLine($"{g.Key.Status} after {g.Key.Attempts} attempt(s): {g.Count()} requests, slowest {g.Max(r => r.ElapsedMilliseconds)} ms");
            }

            Assert.All(results, r => Assert.Equal(SubmitStatus.Ok, r.Status));
        }

        // Right after the last acknowledgement: kill -9 the keeper, and the leader too, so the entries can only come back
        // from the keeper's own disk.
        cluster.Kill(keeper);
        cluster.Kill(leader);
        cluster.Start(keeper);
        cluster.Start(other);
        var watch = Stopwatch.StartNew();
        var newLeader = await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"replicas {keeper} and {other} elected {newLeader.ReplicaId} in {watch.ElapsedMilliseconds} ms after the restart");

        await using var reader = new FastSmrClient(new FastSmrClientOptions { EndPoints = cluster.RunningClientEndPoints, DefaultTimeout = TimeSpan.FromSeconds(10) }.Secured(((IReplicaCluster)cluster).ClientTls));
        var missing = new List<int>();
        for (var i = 0; i < Keys; i++)
        {
            var read = await reader.ReadAsync(KvCommand.Get(Kv.Key("durable-" + i)));
            Assert.Equal(SubmitStatus.Ok, read.Status);
            if (Kv.Result(read.Output) != KvResult.Ok || Kv.Text(read.Output) != "v" + i)
            {
                missing.Add(i);
            }
        }

        Assert.True(missing.Count == 0, $"{missing.Count} acknowledged entries lost: {string.Join(",", missing.Take(20))}");
    }
}
