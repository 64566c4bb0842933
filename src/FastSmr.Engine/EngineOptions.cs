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

    /// <summary>Checks the options and throws on values that cannot work.</summary>
    public void Validate()
    {
        if (!ReplicaId.IsSome)
        {
            throw new ArgumentException("ReplicaId must be non-zero", nameof(ReplicaId));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(QueuedCommandsMax, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(BatchCommandsMax, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(QueuedBytesMax, CommandBytesMax);
        ArgumentOutOfRangeException.ThrowIfLessThan(ReadsInFlightMax, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(ProposalsInFlightMax, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(CommandBytesMax, 1);
        if (BatchBytesMax < Core.Batching.BatchFormat.HeaderSize + Core.Batching.BatchFormat.RecordHeaderSize + CommandBytesMax)
        {
            throw new ArgumentException("BatchBytesMax must hold at least one command of CommandBytesMax bytes", nameof(BatchBytesMax));
        }
    }
}
