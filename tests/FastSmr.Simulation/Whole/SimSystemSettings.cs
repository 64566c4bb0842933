namespace FastSmr.Simulation;

/// <summary>Settings of a whole-system run; the seed decides the rest (fault schedule, delays, snapshot interval).</summary>
public sealed record SimSystemSettings
{
    /// <summary>Replicas in the cluster (3 or 5).</summary>
    public int Replicas { get; init; } = 3;

    /// <summary>Clients, each with one operation in flight.</summary>
    public int Clients { get; init; } = 3;

    /// <summary>Keys the clients work on (few, so that they contend).</summary>
    public int Keys { get; init; } = 3;

    /// <summary>The cluster id (in every log record and hello).</summary>
    public ulong ClusterId { get; init; } = 0x5157;

    /// <summary>The lower election timeout, in milliseconds (the upper one is twice it).</summary>
    public int ElectionLowerMs { get; init; } = 300;

    /// <summary>A snapshot every this many applied entries (small, so that compaction and snapshot transfer happen).</summary>
    public long SnapshotEvery { get; init; } = 64;

    /// <summary>Faults and client load happen before this (world µs); then everything heals and liveness is checked.</summary>
    public long FaultPhaseUs { get; init; } = 6_000_000;

    /// <summary>After the heal, a leader, every client's reads and converged replicas are due within this.</summary>
    public long LivenessBoundUs { get; init; } = 20_000_000;

    /// <summary>A client request's deadline.</summary>
    public long RequestTimeoutUs { get; init; } = 1_000_000;

    /// <summary>The longest pause between a client's operations.</summary>
    public long ThinkUsMax { get; init; } = 2_000;

    /// <summary>One-way delay between a client and a replica.</summary>
    public (long Min, long Max) ClientDelayUs { get; init; } = (20, 500);

    /// <summary>A run that takes more steps than this is stuck (a message storm, a livelock) and fails.</summary>
    public long StepsMax { get; init; } = 5_000_000;

    /// <summary>How long the linearizability checker may search.</summary>
    public TimeSpan CheckBudget { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>The chance, per flush, that the machine loses power during it (set per seed up to this).</summary>
    public double PowerLossChanceMax { get; init; } = 0.01;

    /// <summary>
    /// A leader cut off from its peers also has its clock slowed to a twentieth of real time, far beyond the drift the
    /// lease assumes (ρ = 1 %): runs may then fail, showing the stale lease read the bound guards against. Off by default.
    /// </summary>
    public bool DriftBeyondBound { get; init; }

    /// <summary>A test-only bug injected into every replica.</summary>
    internal FastSmr.Native.NativeBug Bug { get; init; }

    /// <summary>Print every event (replaying one seed).</summary>
    public TextWriter? Trace { get; init; }
}

/// <summary>What one whole-system run found.</summary>
/// <param name="Seed">The seed.</param>
/// <param name="Passed">Whether every check held.</param>
/// <param name="Failure">The first check that failed, or null.</param>
/// <param name="TraceHash">The run's trace hash (equal across processes for one seed).</param>
/// <param name="Stats">Totals.</param>
public sealed record SimSystemResult(int Seed, bool Passed, string? Failure, ulong TraceHash, SimSystemStats Stats);

/// <summary>Totals of one whole-system run.</summary>
public sealed record SimSystemStats(
    long Steps,
    int Faults,
    int Crashes,
    int StorageFaults,
    int Operations,
    int Ok,
    int Unknown,
    long AppliedIndex,
    long Messages,
    long SimulatedUs,
    int Wipes = 0
);
