using FastSmr.Engine;
using FastSmr.Server;

namespace FastSmr.Testing.Chaos;

/// <summary>Settings of one <c>fastsmr chaos</c> run.</summary>
public sealed record ChaosSettings
{
    /// <summary>How long the nemesis injects faults.</summary>
    public int Seconds { get; init; } = 60;

    /// <summary>Runs the replicas and the clients in plaintext (<c>--insecure</c>) instead of mutual TLS.</summary>
    public bool Insecure { get; init; }

    /// <summary>Seed of the fault schedule and the workload.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>3 or 5 replicas.</summary>
    public int Replicas { get; init; } = 3;

    /// <summary>The back-end every replica runs.</summary>
    public BackendKind Backend { get; init; } = BackendKind.DotNext;

    /// <summary>The durability mode every replica runs in.</summary>
    public DurabilityMode Durability { get; init; } = DurabilityMode.Durable;

    /// <summary>Where the history, the check, the report and the replica logs go.</summary>
    public string OutDirectory { get; init; } = "chaos-results";

    /// <summary>TEST ONLY: a fault every replica injects (see <c>ServerOptions.InjectBug</c>); the run must then FAIL.</summary>
    public string? InjectBug { get; init; }

    /// <summary>The lower election timeout; ≥ 1 s survives CPU starvation of 2 cores shared by the whole run.</summary>
    public int ElectionTimeoutMs { get; init; } = 1_000;

    /// <summary>Each client operation's deadline.</summary>
    public TimeSpan OperationTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Register clients; 0 means two per replica.</summary>
    public int RegisterClients { get; init; }

    /// <summary>Clients that write a fresh key each time (read back at the end).</summary>
    public int SetClients { get; init; } = 2;

    /// <summary>Live register keys at once.</summary>
    public int KeySlots { get; init; } = 4;

    /// <summary>Operations on a register key before it is retired.</summary>
    public int OperationsPerKey { get; init; } = 40;

    /// <summary>The least share of operations that must succeed for the run to count as having tested something.</summary>
    public double MinOkShare { get; init; } = 0.2;

    /// <summary>The linearizability check's time budget; running out fails the run.</summary>
    public TimeSpan CheckBudget { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long after a heal a write must be acknowledged again.</summary>
    public TimeSpan RecoveryMax { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Throws <see cref="ArgumentException"/> with the reason when the settings cannot run.</summary>
    public void Validate()
    {
        if (Seconds is < 1 or > 86_400 || Replicas is not (3 or 5) || ElectionTimeoutMs < 50)
        {
            throw new ArgumentException("--seconds 1..86400, --replicas 3 or 5, --election-timeout-ms >= 50");
        }

        if (InjectBug is { } bug && !ServerOptions.InjectedBugs.Contains(bug))
        {
            throw new ArgumentException(
                "unknown --inject-bug '" + bug + "' (available: " + string.Join(", ", ServerOptions.InjectedBugs) + ")"
            );
        }
    }
}
