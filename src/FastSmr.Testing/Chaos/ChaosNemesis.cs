using System.Globalization;
using FastSmr.Core.Protocol;
using FastSmr.Testing.Clusters;

namespace FastSmr.Testing.Chaos;

/// <summary>
/// The seeded fault schedule of a chaos run: every fault kind once in a seeded order, then a weighted draw that picks
/// kill-leader three times as often as any other. Each fault lasts 2–5 s, is healed, and the next one waits until a
/// write invoked after the heal has been acknowledged (or the recovery bound passes, which fails the run).
/// </summary>
internal sealed class ChaosNemesis(
    ProcessCluster cluster,
    ChaosTopology topology,
    ChaosWorkload workload,
    int seed,
    TimeSpan recoveryMax,
    TextWriter progress
)
{
    private readonly Random random = new(unchecked((seed * 7_919) + 17));
    private readonly Dictionary<ChaosFault, int> injected = [];
    private readonly List<string> problems = [];
    private readonly List<HealRecord> heals = [];
    private readonly HashSet<ReplicaId> killed = [];
    private readonly HashSet<ReplicaId> paused = [];
    private readonly System.Diagnostics.Stopwatch clock = System.Diagnostics.Stopwatch.StartNew();

    /// <summary>Faults injected, by kind.</summary>
    public IReadOnlyDictionary<ChaosFault, int> Injected => injected;

    /// <summary>What went wrong on the nemesis side: a fault that could not be injected, no write after a heal, a crash.</summary>
    public IReadOnlyList<string> Problems => problems;

    /// <summary>Every heal with the time until the first write invoked after it was acknowledged.</summary>
    public IReadOnlyList<HealRecord> Heals => heals;

    /// <summary>The kinds the schedule planned (each must have been injected for a PASS).</summary>
    public HashSet<ChaosFault> Planned { get; } = [];

    /// <summary>Runs faults until <paramref name="duration"/> has passed, healing each.</summary>
    public async Task RunAsync(TimeSpan duration, CancellationToken token)
    {
        var plan = new Queue<ChaosFault>(Enum.GetValues<ChaosFault>().OrderBy(_ => random.Next()));
        while (clock.Elapsed < duration && !token.IsCancellationRequested)
        {
            var kind = plan.Count > 0 ? plan.Dequeue() : Draw();
            Planned.Add(kind);
            var length = TimeSpan.FromMilliseconds(random.Next(2_000, 5_000));
            var what = await InjectAsync(kind).ConfigureAwait(false);
            if (what is null)
            {
                problems.Add(kind.Name() + " could not be injected at " + Seconds() + " s (no leader found)");
                await HealAsync(kind, token).ConfigureAwait(false);
                continue;
            }

            injected[kind] = injected.GetValueOrDefault(kind) + 1;
            await progress
                .WriteLineAsync(
                    "chaos: "
                        + Seconds()
                        + " s  "
                        + what
                        + " for "
                        + length.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture)
                        + " s"
                )
                .ConfigureAwait(false);
            if (kind == ChaosFault.ClientCut)
            {
                await Task.Delay(length / 2, token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                topology.CutClients();
                await Task.Delay(length / 2, token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }
            else
            {
                await Task.Delay(length, token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            }

            await HealAsync(kind, token).ConfigureAwait(false);
            await Task.Delay(random.Next(1_000, 2_500), token).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
        }
    }

    /// <summary>
    /// Undoes every fault (restarts killed replicas, resumes paused ones, heals every link), then waits until a write
    /// invoked after the heal is acknowledged; records the time that took, or a problem when it did not happen.
    /// </summary>
    public async Task HealAsync(ChaosFault? after, CancellationToken token)
    {
        UndoFaults();
        var healedAt = ChaosWorkload.Now();
        var name = after?.Name() ?? "final";
        RestartCrashed(name);

        var wait = System.Diagnostics.Stopwatch.StartNew();
        await Wait.TryUntilAsync(
                () => Task.FromResult(workload.LastOkWriteInvoke >= healedAt || token.IsCancellationRequested),
                recoveryMax,
                TimeSpan.FromMilliseconds(25)
            )
            .ConfigureAwait(false);

        if (workload.LastOkWriteInvoke >= healedAt)
        {
            heals.Add(new HealRecord(name, Seconds(), wait.Elapsed.TotalMilliseconds));
            await progress
                .WriteLineAsync(
                    "chaos: "
                        + Seconds()
                        + " s  healed "
                        + name
                        + "; writes acknowledged again after "
                        + wait.Elapsed.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture)
                        + " ms"
                )
                .ConfigureAwait(false);
        }
        else if (!token.IsCancellationRequested)
        {
            heals.Add(new HealRecord(name, Seconds(), null));
            problems.Add(
                "no write was acknowledged within "
                    + recoveryMax.TotalSeconds.ToString(CultureInfo.InvariantCulture)
                    + " s of the heal after "
                    + name
            );
            await progress
                .WriteLineAsync(
                    "chaos: "
                        + Seconds()
                        + " s  healed "
                        + name
                        + "; NO write acknowledged within "
                        + recoveryMax.TotalSeconds.ToString(CultureInfo.InvariantCulture)
                        + " s"
                )
                .ConfigureAwait(false);
        }
    }

    /// <summary>Restarts killed replicas, resumes paused ones and heals every link.</summary>
    private void UndoFaults()
    {
        topology.HealAll();
        foreach (var id in paused)
        {
            cluster.Resume(id);
        }

        paused.Clear();
        foreach (var id in killed)
        {
            cluster.Start(id);
        }

        killed.Clear();
    }

    /// <summary>A replica that exited on its own crashed: that is a problem of the run; it is restarted to go on.</summary>
    private void RestartCrashed(string healName)
    {
        foreach (var id in cluster.Crashed)
        {
            var crash = "replica " + id.ToString() + " exited on its own (crash) before the heal after ";
            problems.Add(crash + healName + ": " + cluster.LogTail(id, 10));
            cluster.Kill(id);
            cluster.Start(id);
        }
    }

    private ChaosFault Draw()
    {
        var kinds = Enum.GetValues<ChaosFault>();
        var roll = random.Next(kinds.Length + 2);
        return roll < 3 ? ChaosFault.KillLeader : kinds[roll - 2];
    }

    private async Task<string?> InjectAsync(ChaosFault kind) =>
        kind switch
        {
            ChaosFault.KillLeader or ChaosFault.KillFollower => await KillAsync(kind).ConfigureAwait(false),
            ChaosFault.Pause => await PauseAsync().ConfigureAwait(false),
            ChaosFault.Partition => Partition(),
            ChaosFault.IsolateLeader => await IsolateLeaderAsync().ConfigureAwait(false),
            ChaosFault.Bridge => Bridge(),
            ChaosFault.OneWay => await OneWayAsync().ConfigureAwait(false),
            ChaosFault.SlowNetwork => SlowNetwork(),
            _ => CutClients(),
        };

    /// <summary>kill -9 of the leader or of a follower (restarted at the heal).</summary>
    private async Task<string?> KillAsync(ChaosFault kind)
    {
        var ids = topology.Ids;
        var leader = await LeaderAsync().ConfigureAwait(false);
        if (leader is null)
        {
            return null;
        }

        var victim = kind == ChaosFault.KillLeader ? leader.Value : Pick(ids.Where(i => i != leader.Value));
        cluster.Kill(victim);
        killed.Add(victim);
        return "kill -9 replica " + victim.ToString() + (victim == leader ? " (leader)" : "");
    }

    /// <summary>SIGSTOP of a replica, the leader two times in three (SIGCONT at the heal).</summary>
    private async Task<string?> PauseAsync()
    {
        var ids = topology.Ids;
        var leader = await LeaderAsync().ConfigureAwait(false);
        var victim = leader is { } l && random.Next(3) < 2 ? l : Pick(ids);
        cluster.Pause(victim);
        paused.Add(victim);
        return "SIGSTOP replica " + victim.ToString() + (victim == leader ? " (leader)" : "");
    }

    /// <summary>A minority cut off from the majority.</summary>
    private string Partition()
    {
        var ids = topology.Ids;
        var shuffled = ids.OrderBy(_ => random.Next()).ToArray();
        var minority = shuffled.Take(random.Next(1, (ids.Count - 1) / 2 + 1)).ToArray();
        topology.Separate(minority);
        return "partition {" + Join(minority) + "} | {" + Join(shuffled.Except(minority)) + "}";
    }

    /// <summary>The leader cut off from everyone.</summary>
    private async Task<string?> IsolateLeaderAsync()
    {
        var leader = await LeaderAsync().ConfigureAwait(false);
        if (leader is null)
        {
            return null;
        }

        topology.Separate([leader.Value]);
        return "isolate leader " + leader.Value.ToString();
    }

    /// <summary>Two halves that only one replica joins.</summary>
    private string Bridge()
    {
        var ids = topology.Ids;
        var shuffled = ids.OrderBy(_ => random.Next()).ToArray();
        var bridge = shuffled[0];
        var others = shuffled[1..];
        var left = others[..(others.Length / 2)];
        var right = others[(others.Length / 2)..];
        foreach (var a in left)
        {
            foreach (var b in right)
            {
                topology.Cut(a, b);
            }
        }

        return "bridge {" + Join(left) + "} - " + bridge.ToString() + " - {" + Join(right) + "}";
    }

    /// <summary>Everything the leader sends is lost; it still receives.</summary>
    private async Task<string?> OneWayAsync()
    {
        var ids = topology.Ids;
        var leader = await LeaderAsync().ConfigureAwait(false);
        if (leader is null)
        {
            return null;
        }

        foreach (var other in ids.Where(i => i != leader.Value))
        {
            topology.LoseOneWay(leader.Value, other);
        }

        return "lose everything leader " + leader.Value.ToString() + " sends to its peers";
    }

    /// <summary>20-150 ms per hop on every peer link.</summary>
    private string SlowNetwork()
    {
        var delay = TimeSpan.FromMilliseconds(random.Next(20, 150));
        topology.SlowPeers(delay);
        return "delay peer links by " + delay.TotalMilliseconds.ToString(CultureInfo.InvariantCulture) + " ms";
    }

    /// <summary>Every client connection cut.</summary>
    private string CutClients()
    {
        topology.CutClients();
        return "cut every client connection";
    }

    /// <summary>The leader with the highest term among the replicas that answer, waiting up to 5 s for one.</summary>
    private Task<ReplicaId?> LeaderAsync() =>
        Wait.ForAsync(
            async () =>
            {
                var reports = await cluster.StatusesAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
                return reports
                    .Where(r => r.Role == ReplicaRole.Leader)
                    .OrderByDescending(r => r.Term.Value)
                    .Select(r => (ReplicaId?)r.ReplicaId)
                    .FirstOrDefault();
            },
            TimeSpan.FromSeconds(5),
            TimeSpan.FromMilliseconds(100)
        );

    private ReplicaId Pick(IEnumerable<ReplicaId> candidates)
    {
        var array = candidates.ToArray();
        return array[random.Next(array.Length)];
    }

    private string Seconds() => clock.Elapsed.TotalSeconds.ToString("F1", CultureInfo.InvariantCulture);

    private static string Join(IEnumerable<ReplicaId> ids) => string.Join(',', ids);

    /// <summary>One heal: after which fault, when, and how long until a write was acknowledged again (null: never).</summary>
    internal sealed record HealRecord(string After, string AtSeconds, double? RecoveryMs);
}
