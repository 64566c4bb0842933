using System.Globalization;
using System.Net;
using FastSmr.Core;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Core.StateMachines;
using FastSmr.Engine;
using FastSmr.Native;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastSmr.Simulation;

/// <summary>
/// One simulated replica machine: its disk and clock last; its process — the real <see cref="ReplicaEngine"/> over the
/// real <see cref="NativeReplica"/>, with the KV state machine — is started, crashed and restarted. Everything the
/// process does runs on the world's thread: its tasks on its <see cref="SimScheduler"/>, its timers on its
/// <see cref="SimTime"/>, the core ticked by a world event every <see cref="NativeReplica.TickUs"/>.
/// </summary>
public sealed class SimNode
{
    private readonly SimWorld world;
    private readonly SimSystemSettings settings;
    private readonly Func<IStateMachine> newStateMachine;

    /// <summary>
    /// Creates machine <paramref name="id"/> (1-based) of a cluster of <paramref name="replicas"/>, whose processes run
    /// the state machines <paramref name="newStateMachine"/> makes.
    /// </summary>
    public SimNode(SimWorld world, SimSystemSettings settings, int id, int replicas, SimClock clock, Func<IStateMachine> newStateMachine)
    {
        this.newStateMachine = newStateMachine ?? throw new ArgumentNullException(nameof(newStateMachine));
        this.world = world ?? throw new ArgumentNullException(nameof(world));
        this.settings = settings ?? throw new ArgumentNullException(nameof(settings));
        Id = id;
        Replicas = replicas;
        Clock = clock;
    }

    /// <summary>The replica id.</summary>
    public int Id { get; }

    /// <summary>How many replicas the cluster has.</summary>
    public int Replicas { get; }

    /// <summary>The disk, across crashes.</summary>
    public SimDisk Disk { get; } = new();

    /// <summary>The machine's clock, across crashes.</summary>
    public SimClock Clock { get; }

    /// <summary>A crashed replica stays down until then (world time); then the simulation's supervisor starts it.</summary>
    public long DownUntilUs { get; set; }

    /// <summary>How many times a process was started here.</summary>
    public int Incarnation { get; private set; }

    /// <summary>The running process, or null while down.</summary>
    public SimProcess? Process { get; private set; }

    /// <summary>The running process's scheduler.</summary>
    public SimScheduler? Scheduler { get; private set; }

    /// <summary>The running process's core.</summary>
    public NativeReplica? Replica { get; private set; }

    /// <summary>The running process's engine.</summary>
    public ReplicaEngine? Engine { get; private set; }

    /// <summary>Whether a process runs and has not stopped itself.</summary>
    public bool Up => Process is { Alive: true } && Replica is { Stopping: false };

    /// <summary>
    /// Starts a new process on the disk as it is (recovery), connected through <paramref name="network"/>. False when
    /// recovery refuses the disk (a damaged record, a snapshot that no longer verifies under a compacted log): the
    /// process exits at once, and <see cref="StartFailure"/> says why.
    /// </summary>
    public bool Start(SimNetwork network)
    {
        ArgumentNullException.ThrowIfNull(network);
        if (Process is { Alive: true })
        {
            throw new InvalidOperationException("replica " + Id + " is running");
        }

        Incarnation++;
        var process = new SimProcess("r" + Id + "." + Incarnation.ToString(CultureInfo.InvariantCulture));
        var scheduler = new SimScheduler(world, process);
        var time = new SimTime(Clock, process);
        var options = BackendOptions(time);
        IReplicaStorage storage;
        try
        {
            storage = Disk.Open();
        }
        catch (InvalidDataException e)
        {
            return Refused(process, e);
        }

        var replica = new NativeReplica(options, storage, "boot-1", NullLogger.Instance, static () => { }, static () => { })
        {
            ResumeOnCapturedContext = true,
            Bug = settings.Bug,
        };
        var engineOptions = new EngineOptions { ReplicaId = new ReplicaId((uint)Id), ClusterId = settings.ClusterId };
        var engine = new ReplicaEngine(
            engineOptions,
            newStateMachine(),
            new SimBackend(replica, network.BusFor(this)),
            time: time,
            newStateMachine: static () => new KvStateMachine(),
            scheduler: scheduler
        );
        Process = process;
        Scheduler = scheduler;
        Replica = replica;
        Engine = engine;
        world.Note("start r" + Id, Incarnation);
        var started = engine.StartAsync(); // the back-end's start (recovery) completes at once; the engine's loops are queued
        if (started.Exception?.GetBaseException() is InvalidDataException refused)
        {
            process.Kill();
            (Process, Scheduler, Replica, Engine) = (null, null, null, null);
            return Refused(process, refused);
        }

        Tick(process, replica);
        return true;
    }

    /// <summary>Why the last start was refused (recovery found the disk damaged), or null.</summary>
    public string? StartFailure { get; private set; }

    private bool Refused(SimProcess process, InvalidDataException e)
    {
        process.Kill();
        StartFailure = e.Message;
        world.Note("refused r" + Id + ": " + e.Message);
        return false;
    }

    /// <summary>
    /// The crash: the process is gone mid-step. After kill -9 the disk keeps everything written (the page cache
    /// survives); after a power loss (<paramref name="powerLoss"/>) only what was synced is sure to be there.
    /// </summary>
    public void Crash(bool powerLoss)
    {
        if (Process is not { } process)
        {
            return;
        }

        process.Kill();
        Disk.Crash(world.Random, powerLoss);
        Process = null;
        Scheduler = null;
        Replica = null;
        Engine = null;
        world.Note("crash r" + Id, Incarnation);
    }

    /// <summary>The engine's status (applied index, digest), or null while down.</summary>
    public StatusReport? Status() => Up ? Engine!.GetStatus() : null;

    private void Tick(SimProcess process, NativeReplica replica) =>
        world.At(Clock.WorldTimeAt(Clock.NowUs + NativeReplica.TickUs), process, "tick r" + Id, () =>
        {
            replica.TryDrive();
            Tick(process, replica);
        });

    private NativeBackendOptions BackendOptions(SimTime time)
    {
        var members = new List<(ReplicaId, IPEndPoint)>();
        for (var i = 1; i <= Replicas; i++)
        {
            members.Add((new ReplicaId((uint)i), new IPEndPoint(IPAddress.Loopback, 7000 + i))); // never dialled
        }

        var options = new NativeBackendOptions
        {
            ReplicaId = new ReplicaId((uint)Id),
            Members = members,
            DataDirectory = "sim/r" + Id,
            ClusterId = settings.ClusterId,
            Durability = DurabilityMode.Durable,
            Election = new ElectionTiming(settings.ElectionLowerMs, 2 * settings.ElectionLowerMs),
            Snapshots = new SnapshotPolicy { EntriesInterval = settings.SnapshotEvery },
            Time = time,
            InlineDrive = true,
        };
        options.Validate();
        return options;
    }

    /// <summary>The engine's view of a <see cref="NativeReplica"/> on a simulated bus.</summary>
    private sealed class SimBackend(NativeReplica replica, IMessageBus bus) : IReplicationBackend
    {
        public LeadershipInfo Leadership => replica.Leadership;

        public LogIndex CommitIndex => replica.CommitIndex;

        public Task<Exception> Failure => replica.Failure;

        public Task StartAsync(IReplicationHost host, CancellationToken token)
        {
            replica.Start(host, bus);
            bus.Start();
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken token)
        {
            replica.RequestStop();
            replica.Close();
            return Task.CompletedTask;
        }

        public ValueTask<ProposeResult> ProposeAsync(ReadOnlyMemory<byte> batch, Term term, CancellationToken token) =>
            replica.ProposeAsync(batch, term, token);

        public ValueTask<LogIndex?> ReadBarrierAsync(CancellationToken token) => replica.ReadBarrierAsync(token);

        public bool ReadStillValid(Term term) => replica.LeaseValid(term.Value);

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
