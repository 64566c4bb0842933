using System.Net;
using FastSmr.Engine;

namespace FastSmr.DotNext;

/// <summary>
/// Settings of the DotNext back-end. DotNext derives member ids from endpoints, so every replica must list exactly the
/// same <see cref="ReplicationBackendOptions.Members"/> addresses in the same form (127.0.0.1 and localhost are
/// different members). <see cref="DurabilityMode.Durable"/> flushes follower appends before they are acknowledged; the
/// data directory holds the WAL and the snapshots; the logger factory also serves DotNext's own components.
/// </summary>
public sealed class DotNextBackendOptions : ReplicationBackendOptions
{
    /// <summary>
    /// Optional per-peer dial addresses: the canonical Raft endpoint of a peer → the address this replica connects to
    /// instead (the chaos harness puts a proxy port per ordered pair there). When any route is given, the back-end uses
    /// FastSmr's socket transport through DotNext's custom-transport hook instead of DotNext's built-in TCP transport.
    /// </summary>
    public IReadOnlyDictionary<IPEndPoint, IPEndPoint> PeerRoutes { get; set; } = new Dictionary<IPEndPoint, IPEndPoint>();

    /// <summary>The lower election timeout in milliseconds.</summary>
    public int LowerElectionTimeoutMs { get; set; } = 300;

    /// <summary>The upper election timeout in milliseconds.</summary>
    public int UpperElectionTimeoutMs { get; set; } = 600;

    /// <summary>The heartbeat period as a fraction of the lower election timeout.</summary>
    public double HeartbeatThreshold { get; set; } = 0.3;

    /// <summary>
    /// The WAL chunk size in bytes. DotNext keeps one fd and one mapping per chunk; the 4 KiB default exhausted file
    /// descriptors after ~280,000 entries on this machine kind, so FastSmr uses large chunks.
    /// </summary>
    public int ChunkSize { get; set; } = 4 << 20;

    /// <summary>A snapshot is taken every this many entries, so the WAL and its chunk files stay bounded.</summary>
    public long SnapshotInterval { get; set; } = 2_048;

    /// <summary>Checks the options and throws on values that cannot work.</summary>
    public void Validate()
    {
        ValidateMembership();
        ArgumentOutOfRangeException.ThrowIfLessThan(ChunkSize, 1 << 20);
        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotInterval, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(LowerElectionTimeoutMs, 10);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(UpperElectionTimeoutMs, LowerElectionTimeoutMs);
    }
}
