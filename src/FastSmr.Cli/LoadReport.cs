namespace FastSmr.Cli;

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
}
