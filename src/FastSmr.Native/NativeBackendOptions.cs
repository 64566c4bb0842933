using System.Net;
using FastSmr.Engine;

namespace FastSmr.Native;

/// <summary>
/// Settings of the native back-end. Durability: <see cref="DurabilityMode.Durable"/> acknowledges an entry (the leader to
/// itself, a follower to the leader) only after fdatasync; <see cref="DurabilityMode.Memory"/> once it is handed to the
/// kernel, and a replica whose machine restarted uncleanly rejoins as a non-voter until it has caught up. The data
/// directory holds the log, the snapshots and the boot id.
/// </summary>
public sealed class NativeBackendOptions : ReplicationBackendOptions
{
    /// <summary>The cluster id: peers of another cluster are refused at the handshake.</summary>
    public ulong ClusterId { get; set; }

    /// <summary>
    /// The heartbeat (and lease round) interval in milliseconds, at most half the lower election timeout; 0 (the default):
    /// a sixth of <see cref="ElectionTiming.LowerMs"/>. The core draws election timeouts from [lower, 2 × lower).
    /// </summary>
    public int HeartbeatIntervalMs { get; set; }

    /// <summary>The heartbeat interval in effect: <see cref="HeartbeatIntervalMs"/>, or a sixth of the lower election timeout.</summary>
    public int EffectiveHeartbeatIntervalMs => HeartbeatIntervalMs > 0 ? HeartbeatIntervalMs : Math.Max(1, Election.LowerMs / 6);

    /// <summary>Bytes per log segment file.</summary>
    public long SegmentBytes { get; set; } = 64L << 20;

    /// <summary>
    /// How long the replication and apply threads spin before blocking when idle. Spinning saves a
    /// wake-up (tens of microseconds on this machine kind) per hand-off and costs a core while it spins: 0 turns it off.
    /// </summary>
    public int SpinIterations { get; set; }

    /// <summary>
    /// True (the default): the thread that brings work — a peer's message, a proposal — runs the core itself when no
    /// other thread is, and applies what that commits. False: it hands the work to the dedicated replication and apply
    /// threads. See native-notes/latency.md for the measurement behind the default.
    /// </summary>
    public bool InlineDrive { get; set; } = true;

    /// <summary>Bytes queued towards one peer at most; past it, messages to that peer are dropped (Raft retries them).</summary>
    public long PeerQueueBytesMax { get; set; } = 64L << 20;

    /// <summary>The largest snapshot accepted from a leader.</summary>
    public long SnapshotBytesMax { get; set; } = 8L << 30;

    /// <summary>Checks the options and throws on values that cannot work.</summary>
    public void Validate()
    {
        ValidateShared();
        ArgumentOutOfRangeException.ThrowIfNegative(HeartbeatIntervalMs);
        if (Election.LowerMs < 2 * EffectiveHeartbeatIntervalMs)
        {
            throw new ArgumentException("the lower election timeout must be at least two heartbeat intervals", nameof(HeartbeatIntervalMs));
        }
        ArgumentOutOfRangeException.ThrowIfNegative(SpinIterations);
        ArgumentOutOfRangeException.ThrowIfLessThan(PeerQueueBytesMax, 1L << 20);
        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotBytesMax, 1L << 20);
    }
}
