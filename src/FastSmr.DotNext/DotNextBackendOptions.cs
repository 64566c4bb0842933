using System.Net;
using FastSmr.Engine;

namespace FastSmr.DotNext;

/// <summary>
/// Settings of the DotNext back-end. DotNext derives member ids from endpoints, so every replica must list exactly the
/// same <see cref="ReplicationBackendOptions.Members"/> addresses in the same form (127.0.0.1 and localhost are
/// different members). With any <see cref="ReplicationBackendOptions.PeerRoutes"/>, the back-end dials peers through
/// FastSmr's socket transport (DotNext's custom-transport hook) instead of DotNext's built-in TCP transport.
/// <see cref="DurabilityMode.Durable"/> flushes follower appends before they are acknowledged; the
/// data directory holds the WAL and the snapshots; the logger factory also serves DotNext's own components.
/// </summary>
public sealed class DotNextBackendOptions : ReplicationBackendOptions
{
    /// <summary>The heartbeat period as a fraction of the lower election timeout.</summary>
    public double HeartbeatThreshold { get; set; } = 0.3;

    /// <summary>
    /// The WAL chunk size in bytes. DotNext keeps one fd and one mapping per chunk; the 4 KiB default exhausted file
    /// descriptors after ~280,000 entries on this machine kind, so FastSmr uses large chunks.
    /// </summary>
    public int ChunkSize { get; set; } = 4 << 20;

    /// <summary>Checks the options and throws on values that cannot work.</summary>
    public void Validate()
    {
        ValidateShared();
        ArgumentOutOfRangeException.ThrowIfLessThan(ChunkSize, 1 << 20);
    }
}
