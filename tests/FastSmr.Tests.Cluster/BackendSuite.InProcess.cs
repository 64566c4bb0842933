using System.Diagnostics;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Testing;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;

/// <summary>The suite's in-process clusters: replication, failover, catch-up by log and by snapshot, retries, follower answers.</summary>
public abstract partial class BackendSuite
{
    // 8 workers x the i in [0, 40) with i % 3 == 1.
    private const long Increments = 8 * 13;

    [Fact]
    public async Task ThreeReplicas_ConcurrentWrites_EveryReplicaAppliesTheSameSequence()
    {
        await using var cluster = new InProcessCluster(3, backend: Backend);
        await cluster.StartAllAsync();
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        await using var client = cluster.NewClient();
        var tasks = Enumerable.Range(0, 8).Select(async worker =>
        {
            for (var i = 0; i < 40; i++)
            {
                var command = (i % 3) switch
                {
                    0 => KvCommand.Put(Kv.Key($"k{i % 7}"), Kv.Key($"w{worker}-{i}")),
                    1 => KvCommand.Increment(Kv.Key("counter"), 1),
                    _ => KvCommand.Put(Kv.Key($"w{worker}"), Kv.Key(i.ToString())),
                };
                var result = await client.SubmitAsync(command);
                Assert.Equal(SubmitStatus.Ok, result.Status);
            }
        });
        await Task.WhenAll(tasks);

        var statuses = await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
        Assert.All(statuses, s => Assert.Equal(statuses[0].Digest, s.Digest));
        foreach (var server in cluster.Running)
        {
            var kv = (KvStateMachine)server.StateMachine;
            Assert.True(kv.TryGetValue(Kv.Key("counter"), out var counter));
            Assert.Equal(Increments, BitConverter.ToInt64(counter));
        }

        var read = await client.ReadAsync(KvCommand.Get(Kv.Key("counter")));
        Assert.Equal(SubmitStatus.Ok, read.Status);
        Assert.Equal(Increments, Kv.Counter(read.Output));
    }

    [Fact]
    public async Task LeaderStopped_NewLeaderTakesOver_AndNoAcknowledgedWriteIsLost()
    {
        await using var cluster = new InProcessCluster(3, backend: Backend);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        await using var client = cluster.NewClient();
        var acknowledged = new List<string>();
        for (var i = 0; i < 60; i++)
        {
            var result = await client.SubmitAsync(KvCommand.Put(Kv.Key($"before-{i}"), Kv.Key($"v{i}")));
            Assert.Equal(SubmitStatus.Ok, result.Status);
            acknowledged.Add($"before-{i}");
        }

        await EveryReplicaVotesAsync(cluster);
        var watch = Stopwatch.StartNew();
        await cluster.StopAsync(leader.Options.Id);
        var next = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        output.WriteLine($"new leader {next.Options.Id} elected {watch.ElapsedMilliseconds} ms after the old leader {leader.Options.Id} stopped");
        Assert.NotEqual(leader.Options.Id, next.Options.Id);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"failover took {watch.Elapsed}");

        for (var i = 0; i < 60; i++)
        {
            var result = await client.SubmitAsync(KvCommand.Put(Kv.Key($"after-{i}"), Kv.Key($"v{i}")));
            Assert.Equal(SubmitStatus.Ok, result.Status);
            acknowledged.Add($"after-{i}");
        }

        foreach (var key in acknowledged)
        {
            var read = await client.ReadAsync(KvCommand.Get(Kv.Key(key)));
            Assert.Equal(SubmitStatus.Ok, read.Status);
            Assert.Equal(KvResult.Ok, Kv.Result(read.Output));
            Assert.Equal("v" + key.Split('-')[1], Kv.Text(read.Output));
        }
    }

    [Fact]
    public async Task StoppedReplica_RestartedLater_CatchesUpThroughLogAndSnapshot()
    {
        await using var cluster = new InProcessCluster(3, snapshotInterval: 50, backend: Backend);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s.Options.Id != leader.Options.Id).Options.Id;
        await using var client = cluster.NewClient();
        await client.SubmitAsync(KvCommand.Put(Kv.Key("early"), Kv.Key("1")));
        await cluster.StopAsync(follower);

        for (var i = 0; i < 300; i++)
        {
            var result = await client.SubmitAsync(KvCommand.Increment(Kv.Key("n"), 1));
            Assert.Equal(SubmitStatus.Ok, result.Status);
        }

        var watch = Stopwatch.StartNew();
        await cluster.StartAsync(follower);
        var statuses = await cluster.ConvergeAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"replica {follower} caught up to index {statuses[0].AppliedIndex} in {watch.ElapsedMilliseconds} ms");
        var kv = (KvStateMachine)cluster[follower].StateMachine;
        Assert.True(kv.TryGetValue(Kv.Key("n"), out var n));
        Assert.Equal(300, BitConverter.ToInt64(n));
        Assert.True(kv.TryGetValue(Kv.Key("early"), out _));
    }

    [Fact]
    public async Task ReplicaBehindTheCompactedLog_IsBroughtUpByInstallSnapshot()
    {
        // 1 MiB chunks, a snapshot every 20 entries and 16 KiB values: the leader compacts whole chunks while the
        // follower is down, so the follower can only catch up from a snapshot.
        await using var cluster = new InProcessCluster(3, snapshotInterval: 20, configure: o => o.WalChunkBytes = 1 << 20, backend: Backend);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s.Options.Id != leader.Options.Id).Options.Id;
        await using var client = cluster.NewClient();
        await cluster.StopAsync(follower);
        var value = new byte[16 * 1024];
        for (var i = 0; i < 400; i++)
        {
            value[0] = (byte)i;
            var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("big-" + (i % 50)), value));
            Assert.Equal(SubmitStatus.Ok, result.Status);
        }

        var watch = Stopwatch.StartNew();
        await cluster.StartAsync(follower);
        var statuses = await cluster.ConvergeAsync(TimeSpan.FromSeconds(60));
        output.WriteLine($"replica {follower} caught up to index {statuses[0].AppliedIndex} in {watch.ElapsedMilliseconds} ms, snapshots installed: {cluster[follower].Engine.SnapshotsRestored}");
        Assert.True(cluster[follower].Engine.SnapshotsRestored >= 1, "the follower caught up without a snapshot: the test did not exercise InstallSnapshot");
        var kv = (KvStateMachine)cluster[follower].StateMachine;
        Assert.Equal(50, kv.Count);
        Assert.True(kv.TryGetValue(Kv.Key("big-49"), out var last));
        Assert.Equal(399 % 256, last[0]);
    }

    /// <summary>
    /// Waits until no replica of a new native cluster is still a non-voter: one that did not see every member as new at
    /// the start votes once it has caught up (decisions 91, 102, 103); a leader lost before then leaves no majority,
    /// which is the amnesia rule working, not the scenario these tests are about.
    /// </summary>
    private static Task EveryReplicaVotesAsync(InProcessCluster cluster) =>
        Wait.UntilAsync(
            () => cluster.Running.All(s => s.Backend is not FastSmr.Native.NativeBackend native || !native.Rejoining),
            TimeSpan.FromSeconds(30),
            "every replica votes (caught up)"
        );

    [Fact]
    public async Task RetriedNonIdempotentIncrements_AcrossALeaderChange_AreNeverAppliedTwice()
    {
        await using var cluster = new InProcessCluster(3, backend: Backend);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        await using var client = cluster.NewClient(TimeSpan.FromSeconds(3));
        long ok = 0, unknown = 0, other = 0;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 4).Select(async _ =>
        {
            while (!stop.IsCancellationRequested)
            {
                var result = await client.SubmitAsync(KvCommand.Increment(Kv.Key("c"), 1));
                switch (result.Status)
                {
                    case SubmitStatus.Ok: Interlocked.Increment(ref ok); break;
                    case SubmitStatus.Unknown: Interlocked.Increment(ref unknown); break;
                    default: Interlocked.Increment(ref other); break;
                }
            }
        }).ToList();

        await Wait.UntilAsync(() => Interlocked.Read(ref ok) >= 20, TimeSpan.FromSeconds(30), "increments are acknowledged before the leader stops");
        await EveryReplicaVotesAsync(cluster);
        await cluster.StopAsync(leader.Options.Id);
        await cluster.WaitForLeaderAsync(TimeSpan.FromSeconds(30));
        var beforeFailover = Interlocked.Read(ref ok);
        await Wait.UntilAsync(() => Interlocked.Read(ref ok) >= beforeFailover + 20, TimeSpan.FromSeconds(30), "increments are acknowledged by the new leader");
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        await cluster.ConvergeAsync(TimeSpan.FromSeconds(30));
        var read = await client.ReadAsync(KvCommand.Get(Kv.Key("c")));
        Assert.Equal(SubmitStatus.Ok, read.Status);
        var value = Kv.Counter(read.Output);
        output.WriteLine($"ok={ok} unknown={unknown} not-appended={other} counter={value}");
        Assert.True(ok > 0);
        // Every Ok was applied exactly once; an Unknown may or may not have been; nothing else was applied at all.
        Assert.InRange(value, ok, ok + unknown);
    }

    [Fact]
    public async Task Follower_AnswersNotLeader_AndLinearizableReadsNeedTheLeader()
    {
        await using var cluster = new InProcessCluster(3, DurabilityMode.Memory, backend: Backend);
        await cluster.StartAllAsync();
        var leader = await cluster.WaitForLeaderServerAsync(TimeSpan.FromSeconds(30));
        var follower = cluster.Running.First(s => s.Options.Id != leader.Options.Id);
        using var result = await follower.Engine.SubmitAsync(KvCommand.Put(Kv.Key("x"), Kv.Key("y")), TimeSpan.FromSeconds(2));
        Assert.Equal(SubmitStatus.NotLeader, result.Status);
        Assert.Equal(leader.Options.Id, result.LeaderId);
        using var read = await follower.Engine.ReadAsync(KvCommand.Get(Kv.Key("x")), ReadConsistency.Linearizable);
        Assert.Equal(SubmitStatus.NotLeader, read.Status);
        using var local = await follower.Engine.ReadAsync(KvCommand.Get(Kv.Key("x")), ReadConsistency.Local);
        Assert.Equal(SubmitStatus.Ok, local.Status);
        Assert.Equal((byte)KvResult.NotFound, local.Output.Span[0]);
    }
}
