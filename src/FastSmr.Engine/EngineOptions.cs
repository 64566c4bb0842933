namespace FastSmr.Engine;

/// <summary>
/// Limits and knobs of a <see cref="ReplicaEngine"/>. Every queue and window has a maximum set here; past it the answer
/// is Busy.
/// </summary>
public sealed class EngineOptions
{
    /// <summary>This replica's id (non-zero; the proposer id written into batch headers).</summary>
    public ReplicaId ReplicaId { get; set; }

    /// <summary>The cluster id; snapshots of another cluster are refused.</summary>
    public ulong ClusterId { get; set; }

    /// <summary>The most commands waiting for a batch; beyond it a submit is answered Busy.</summary>
    public int QueuedCommandsMax { get; set; } = 65_536;

    /// <summary>The most bytes of commands waiting for a batch; beyond it a submit is answered Busy.</summary>
    public long QueuedBytesMax { get; set; } = 64L << 20;

    /// <summary>The most linearizable or local reads running at once; beyond it a read is answered Busy.</summary>
    public int ReadsInFlightMax { get; set; } = 4_096;

    /// <summary>The largest batch (one log entry) in bytes.</summary>
    public int BatchBytesMax { get; set; } = 1 << 20;

    /// <summary>The most commands in one batch.</summary>
    public int BatchCommandsMax { get; set; } = 8_192;

    /// <summary>How many batches may be in flight (proposed, not yet committed) at once.</summary>
    public int ProposalsInFlightMax { get; set; } = 8;

    /// <summary>The largest single command in bytes.</summary>
    public int CommandBytesMax { get; set; } = 256 * 1024;

    /// <summary>The timeout applied to requests that do not carry one.</summary>
    public TimeSpan DefaultTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The longest timeout a request may ask for.</summary>
    public TimeSpan TimeoutMax { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How often waiting requests are checked against their deadlines: appended-but-uncommitted ones by the
    /// sweeper (→ Unknown), and queued ones while every proposal slot is busy (→ Timeout).</summary>
    public TimeSpan DeadlineSweepInterval { get; set; } = TimeSpan.FromMilliseconds(10);

    /// <summary>Checks the options and throws, naming the field and the rule, on values that cannot work.</summary>
    public void Validate()
    {
        OptionRules.That(ReplicaId.IsSome, nameof(ReplicaId), "must be non-zero");
        ValidateLimits("");
    }

    /// <summary>Checks the limits and timeouts only, with <paramref name="prefix"/> before each field name ("Engine.").</summary>
    public void ValidateLimits(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        OptionRules.Range(prefix + nameof(QueuedCommandsMax), QueuedCommandsMax, 1, 1 << 24);
        OptionRules.Range(prefix + nameof(BatchCommandsMax), BatchCommandsMax, 1, 1 << 20);
        OptionRules.Range(prefix + nameof(ReadsInFlightMax), ReadsInFlightMax, 1, 1 << 20);
        OptionRules.Range(prefix + nameof(ProposalsInFlightMax), ProposalsInFlightMax, 1, 1_024);
        OptionRules.Range(prefix + nameof(BatchBytesMax), BatchBytesMax, 4_096, 64 << 20);
        var overhead = Core.Batching.BatchFormat.HeaderSize + Core.Batching.BatchFormat.RecordHeaderSize;
        OptionRules.Range(prefix + nameof(CommandBytesMax), CommandBytesMax, 1, BatchBytesMax - overhead);
        OptionRules.Range(prefix + nameof(QueuedBytesMax), QueuedBytesMax, CommandBytesMax, 1L << 40);
        OptionRules.Range(prefix + nameof(TimeoutMax), TimeoutMax, TimeSpan.FromMilliseconds(1), TimeSpan.FromHours(1));
        OptionRules.Range(prefix + nameof(DefaultTimeout), DefaultTimeout, TimeSpan.FromMilliseconds(1), TimeoutMax);
        OptionRules.Range(
            prefix + nameof(DeadlineSweepInterval),
            DeadlineSweepInterval,
            TimeSpan.FromMilliseconds(1),
            TimeSpan.FromSeconds(10)
        );
    }
}
