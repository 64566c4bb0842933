namespace FastSmr.Testing.Load;

/// <summary>What a load run measured.</summary>
internal sealed record LoadReport
{
    public long Ops { get; init; }

    public long Errors { get; init; }

    public Dictionary<string, long> ErrorsByStatus { get; init; } = [];

    public double Seconds { get; init; }

    public double OpsPerSecond => Seconds > 0 ? Ops / Seconds : 0;

    public long P50Us { get; init; }

    public long P90Us { get; init; }

    public long P99Us { get; init; }

    public long P999Us { get; init; }

    public long MaxUs { get; init; }

    /// <summary>Bytes the load generator itself allocated (its GC pauses land in the measured latency).</summary>
    public long GeneratorAllocatedBytes { get; init; }

    /// <summary>Gen0 collections in the load generator during the run.</summary>
    public int GeneratorGen0Collections { get; init; }
}
