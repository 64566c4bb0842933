namespace FastSmr.Testing.Load;

/// <summary>What the load generator offers.</summary>
public sealed record LoadSettings
{
    /// <summary>How long the measured run lasts.</summary>
    public int Seconds { get; init; } = 10;

    /// <summary>Connections (one client each).</summary>
    public int Clients { get; init; } = 64;

    /// <summary>Requests in flight per connection.</summary>
    public int Pipeline { get; init; } = 1;

    /// <summary>Value size in bytes of each put.</summary>
    public int PayloadBytes { get; init; } = 64;

    /// <summary>Offered rate in requests/s across all clients (open loop); 0 means closed loop.</summary>
    public double Rate { get; init; }

    /// <summary>The number of distinct keys written.</summary>
    public int Keys { get; init; } = 100_000;

    /// <summary>Per-request deadline.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The cluster id.</summary>
    public ulong ClusterId { get; init; }

    /// <summary>The machine's floor (from <c>bench floor --json</c>), when given: the p50 is reported as a ratio to it.</summary>
    public CommitFloor? Floor { get; init; }

    /// <summary>Client 1's credentials for a cluster that runs mutual TLS; null connects in plaintext (<c>--insecure</c>).</summary>
    public FastSmr.Security.TlsCredentials? Tls { get; init; }

    /// <summary>Checks the settings.</summary>
    public void Validate()
    {
        if (Seconds < 1 || Clients < 1 || Pipeline < 1 || PayloadBytes < 0 || Rate < 0 || Keys < 1)
        {
            throw new ArgumentException("seconds, clients, pipeline and keys must be ≥ 1; payload and rate ≥ 0");
        }

        if (Clients > 4_096 || Pipeline > 65_536 || PayloadBytes > 1 << 20)
        {
            throw new ArgumentException("clients ≤ 4096, pipeline ≤ 65536, payload ≤ 1 MiB");
        }
    }
}
