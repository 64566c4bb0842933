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

    /// <summary>Optional dial addresses per peer id (the chaos harness routes each ordered pair through a proxy port).</summary>
    public IReadOnlyDictionary<uint, IPEndPoint> PeerRoutes { get; set; } = new Dictionary<uint, IPEndPoint>();

    /// <summary>
    /// The minimum election timeout in milliseconds (timeouts are drawn from [min, 2 × min)); the lease is derived from
    /// it.
    /// </summary>
    public int ElectionTimeoutMs { get; set; } = 300;

    /// <summary>The heartbeat (and lease round) interval in milliseconds; at most half the election timeout.</summary>
    public int HeartbeatIntervalMs { get; set; } = 50;

    /// <summary>A snapshot is taken every this many applied entries, and the log before it is compacted.</summary>
    public long SnapshotInterval { get; set; } = 16_384;

    /// <summary>A snapshot is also taken once this many bytes of entries were applied since the last one: it bounds the
    /// memory the core holds for entries not yet compacted.</summary>
    public long SnapshotBytes { get; set; } = 64L << 20;

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
        ValidateMembership();
        ArgumentOutOfRangeException.ThrowIfLessThan(HeartbeatIntervalMs, 1);
        if (ElectionTimeoutMs < 2 * HeartbeatIntervalMs)
        {
            throw new ArgumentException("ElectionTimeoutMs must be at least two heartbeat intervals", nameof(ElectionTimeoutMs));
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotInterval, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotBytes, 1L << 20);
        ArgumentOutOfRangeException.ThrowIfNegative(SpinIterations);
        ArgumentOutOfRangeException.ThrowIfLessThan(PeerQueueBytesMax, 1L << 20);
        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotBytesMax, 1L << 20);
    }
}
