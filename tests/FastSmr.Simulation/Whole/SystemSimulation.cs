using System.Globalization;
using FastSmr.Core.Protocol;
using FastSmr.Verification;

namespace FastSmr.Simulation;

/// <summary>
/// One seeded whole-system run: N <see cref="SimNode"/>s (engine + native replica + KV state machine each) and
/// <see cref="SimClient"/>s on one <see cref="SimWorld"/>, under a seeded fault schedule — crashes (process or power
/// loss), partitions, lossy and duplicating links, failing fsyncs, a full disk, clock drift within the lease bound —
/// then healed. Checked: replicas never apply different commands at one place, one leader per term, liveness after the
/// heal (a leader, every client's reads, converged replicas with one digest), and the whole history is linearizable
/// (so no acknowledged write is lost).
/// </summary>
public sealed class SystemSimulation
{
    private const long CheckEveryUs = 10_000;
    private readonly int seed;
    private readonly SimSystemSettings settings;
    private readonly SimWorld world;
    private readonly List<SimNode> nodes = [];
    private readonly SimNetwork network;
    private readonly List<SimClient> clients = [];
    private readonly List<KvOperation> history = [];
    private readonly Dictionary<(long Index, int Ordinal), ulong> applied = [];
    private readonly Dictionary<long, int> leaderOfTerm = [];
    private string? failure;
    private int faults;
    private int crashes;
    private int storageFaults;
    private int wipes;
    private readonly HashSet<int> damaged = []; // replicas whose disk was damaged: at most F, as VOPR bounds its faults

    /// <summary>Prepares the run of <paramref name="seed"/>.</summary>
    public SystemSimulation(int seed, SimSystemSettings settings)
    {
        this.seed = seed;
        this.settings = settings ?? throw new ArgumentNullException(nameof(settings));
        world = new SimWorld(new SimRandom(((ulong)seed * 0x9E3779B97F4A7C15UL) + 7)) { Trace = settings.Trace };
        for (var i = 1; i <= settings.Replicas; i++)
        {
            var rate = DrawRate();
            nodes.Add(new SimNode(world, settings, i, settings.Replicas, new SimClock(world, world.Random.Between(0, 1_000_000_000), rate), () => new RecordingStateMachine(applied, Fail)));
        }

        network = new SimNetwork(world, nodes);
        for (var c = 1; c <= settings.Clients; c++)
        {
            clients.Add(new SimClient(world, nodes, settings, c, history));
        }
    }

    /// <summary>Runs it and checks everything.</summary>
    public SimSystemResult Run()
    {
        try
        {
            RunChecked();
        }
#pragma warning disable CA1031 // Whatever escapes is the seed's failure, reported with the seed.
        catch (Exception e)
#pragma warning restore CA1031
        {
            failure ??= "unexpected " + e;
        }

        var stats = new SimSystemStats(
            world.Steps,
            faults,
            crashes,
            storageFaults,
            history.Count,
            history.Count(o => o.Status == OperationStatus.Ok),
            history.Count(o => o.Status == OperationStatus.Unknown),
            applied.Count == 0 ? 0 : applied.Keys.Max(k => k.Index),
            network.Sent,
            world.NowUs,
            wipes
        );
        return new SimSystemResult(seed, failure is null, failure, world.TraceHash, stats);
    }

    private void RunChecked()
    {
        var powerLoss = world.Random.Chance(0.5) ? world.Random.Unit() * settings.PowerLossChanceMax : 0;
        foreach (var node in nodes)
        {
            node.Disk.Random = world.Random;
            node.Disk.PowerLossChance = powerLoss;
            node.Disk.OnPowerLoss = () =>
            {
                crashes++;
                node.Crash(powerLoss: true);
                node.DownUntilUs = world.NowUs + world.Random.Between(50_000, 1_000_000);
            };
        }

        network.DropChance = world.Random.Below(3) switch { 0 => 0, 1 => 0.01, _ => 0.05 };
        network.DuplicateChance = world.Random.Chance(0.5) ? 0.01 : 0;
        network.DamageChance = world.Random.Chance(0.5) ? 0.05 : 0;
        foreach (var node in nodes)
        {
            world.At(0, null, "boot r" + node.Id, () => StartNode(node));
        }

        var load = clients.Select(c => c.RunAsync(settings.FaultPhaseUs)).ToList();
        ScheduleFaults();
        Watch();
        world.RunUntil(settings.FaultPhaseUs, () => failure is not null || !Idle());
        if (failure is not null)
        {
            return;
        }

        Heal();
        var healedAt = world.NowUs;
        var deadline = healedAt + settings.LivenessBoundUs;
        var reads = clients.Select(c => c.ReadAllAsync(deadline)).ToList();
        world.RunUntil(deadline, () => failure is not null || !Idle() || (reads.All(r => r.IsCompleted) && load.All(l => l.IsCompleted) && Converged()));
        if (failure is not null)
        {
            return;
        }

        if (!reads.All(r => r.IsCompletedSuccessfully && r.Result))
        {
            Fail("liveness: the clients' reads did not all succeed within " + (settings.LivenessBoundUs / 1000) + " ms of the heal" + Describe());
            return;
        }

        if (!Converged())
        {
            Fail("liveness: the replicas did not converge within " + (settings.LivenessBoundUs / 1000) + " ms of the heal" + Describe());
            return;
        }

        var verdict = LinearizabilityChecker.Check(history, settings.CheckBudget);
        if (verdict.Verdict != CheckVerdict.Linearizable)
        {
            Fail(verdict.Describe());
        }
    }

    /// <summary>
    /// Between steps no thread is inside a replica, so a replica with work in its queues lost a wake-up: the work waits
    /// for a tick (or forever, for a replica that ticks no more).
    /// </summary>
    private bool Idle()
    {
        if (world.Steps > settings.StepsMax)
        {
            Fail("the run took more than " + settings.StepsMax + " steps: a message storm or a livelock" + Describe());
            return false;
        }

        foreach (var node in nodes)
        {
            if (node.Replica is { Stopping: false } replica && node.Process is { Alive: true } && !replica.Busy && replica.HasQueuedWork)
            {
                Fail("replica r" + node.Id + " is idle with work queued (a lost wake-up)");
                return false;
            }
        }

        return true;
    }

    private bool Converged()
    {
        var statuses = nodes.Select(n => n.Status()).ToList();
        if (statuses.Any(s => s is null))
        {
            return false;
        }

        var first = statuses[0]!.Value;
        return statuses.All(s => s!.Value.AppliedIndex == first.AppliedIndex && s.Value.Digest == first.Digest && s.Value.AppliedIndex > LogIndex.Zero);
    }

    private string Describe() =>
        ": " + string.Join("; ", nodes.Select(n => n.Status() is { } s
            ? string.Create(CultureInfo.InvariantCulture, $"r{n.Id} {s.Role} t{s.Term.Value} applied {s.AppliedIndex.Value}")
            : "r" + n.Id + " down"));

    private void Fail(string what)
    {
        if (failure is null)
        {
            failure = string.Create(CultureInfo.InvariantCulture, $"at {world.NowUs} µs: {what}");
            world.Note("FAIL " + what);
        }
    }

    /// <summary>Every 10 ms: one leader per term; a replica that stopped itself (storage failure) is restarted, as a supervisor would.</summary>
    private void Watch() =>
        world.After(CheckEveryUs, null, "watch", () =>
        {
            foreach (var node in nodes)
            {
                if (node.Replica is { } replica && node.Process is { Alive: true })
                {
                    var view = replica.Leadership;
                    if (view.Role == ReplicaRole.Leader)
                    {
                        if (leaderOfTerm.TryGetValue(view.Term.Value, out var other) && other != node.Id)
                        {
                            Fail("two leaders in term " + view.Term.Value + ": r" + other + " and r" + node.Id);
                        }

                        leaderOfTerm[view.Term.Value] = node.Id;
                    }

                    if (replica.Stopping)
                    {
                        node.Crash(powerLoss: false); // the process exits; a supervisor starts it again
                        node.DownUntilUs = world.NowUs + world.Random.Between(10_000, 200_000);
                    }
                }
                else if (node.Process is null && world.NowUs >= node.DownUntilUs)
                {
                    StartNode(node);
                }
            }

            Watch();
        });

    private void Restart(SimNode node)
    {
        if (node.Process is null)
        {
            StartNode(node);
        }
    }

    /// <summary>
    /// Starts a replica; when recovery refuses its disk, the operator wipes it and starts it empty (it rejoins as a
    /// replica without state, decision 87) — allowed only for a disk the run damaged: a refusal otherwise is a bug.
    /// </summary>
    private void StartNode(SimNode node)
    {
        if (node.Start(network))
        {
            return;
        }

        if (!damaged.Contains(node.Id))
        {
            Fail("replica r" + node.Id + " refused its undamaged disk: " + node.StartFailure);
            return;
        }

        wipes++;
        node.Disk.Wipe();
        if (!node.Start(network))
        {
            Fail("replica r" + node.Id + " refused a wiped disk: " + node.StartFailure);
        }
    }

    private void ScheduleFaults()
    {
        var count = world.Random.Between(2, 12);
        for (var i = 0; i < count; i++)
        {
            var at = world.Random.Between(200_000, settings.FaultPhaseUs - 200_000);
            var kind = settings.DriftBeyondBound && world.Random.Chance(0.5) ? 5 : world.Random.Below(9); // isolate slow leaders
            world.At(at, null, "fault " + kind, () => Inject(kind));
        }
    }

    private void Inject(int kind)
    {
        faults++;
        var node = nodes[world.Random.Below(nodes.Count)];
        switch (kind)
        {
            case 0 or 1: // a crash: kill -9 (the page cache survives) or power loss (unsynced writes lost or torn)
                if (node.Process is not null && nodes.Count(n => n.Process is null) < (nodes.Count - 1) / 2)
                {
                    crashes++;
                    node.Crash(powerLoss: kind == 1);
                    node.DownUntilUs = world.NowUs + world.Random.Between(50_000, 2_000_000);
                }

                break;
            case 2: // a partition: one replica cut off both ways, or one link one way
                if (world.Random.Chance(0.5))
                {
                    foreach (var other in nodes.Where(n => n != node))
                    {
                        network.Cut(node.Id, other.Id);
                        network.Cut(other.Id, node.Id);
                    }
                }
                else
                {
                    network.Cut(node.Id, nodes[world.Random.Below(nodes.Count)].Id);
                }

                world.After(world.Random.Between(100_000, 3_000_000), null, "heal links", network.HealAll);
                break;
            case 3: // a failing fdatasync: the replica stops; its supervisor restarts it
                storageFaults++;
                node.Disk.FailNextFlush = true;
                break;
            case 4: // a full disk for a while
                storageFaults++;
                node.Disk.Full = true;
                world.After(world.Random.Between(100_000, 1_000_000), null, "disk space r" + node.Id, () => node.Disk.Full = false);
                break;
            case 5: // the leader cut off from its peers (its clients still reach it): its lease must run out first
                if (nodes.FirstOrDefault(n => n.Replica is { } r && n.Process is { Alive: true } && r.Leadership.Role == ReplicaRole.Leader) is { } leader)
                {
                    foreach (var other in nodes.Where(n => n != leader))
                    {
                        network.Cut(leader.Id, other.Id);
                        network.Cut(other.Id, leader.Id);
                    }

                    if (settings.DriftBeyondBound)
                    {
                        leader.Clock.SetRate(0.05); // far beyond ρ: its lease lasts twenty times longer than it thinks
                    }

                    world.After(world.Random.Between(100_000, 3_000_000), null, "heal links", network.HealAll);
                }

                break;
            case 7 or 8: // a damaged log record or snapshot file, found at the next recovery: on at most F replicas
                if (damaged.Count < (nodes.Count - 1) / 2 || damaged.Contains(node.Id))
                {
                    if (kind == 7 ? node.Disk.DamageRecord(world.Random) : node.Disk.DamageSnapshot(world.Random))
                    {
                        storageFaults++;
                        damaged.Add(node.Id);
                    }
                }

                break;
            default: // a slower or faster clock, within the bound
                node.Clock.SetRate(DrawRate());
                break;
        }
    }

    /// <summary>
    /// A clock rate within 0.4 % of real time (the core assumes at most ρ = 1 %). With
    /// <see cref="SimSystemSettings.DriftBeyondBound"/>, an isolated leader's clock also slows to a twentieth.
    /// </summary>
    private double DrawRate() => 1 + (((world.Random.Unit() * 2) - 1) * 0.004);

    private void Heal()
    {
        network.HealAll();
        network.DropChance = 0;
        network.DuplicateChance = 0;
        network.DamageChance = 0;
        foreach (var node in nodes)
        {
            node.Disk.Full = false;
            node.Disk.FailNextFlush = false;
            node.Disk.PowerLossChance = 0;
            node.DownUntilUs = 0;
            Restart(node);
        }

        world.Note("heal");
    }
}
