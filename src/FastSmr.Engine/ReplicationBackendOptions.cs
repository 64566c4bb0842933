using System.Net;
using FastSmr.Security;
using Microsoft.Extensions.Logging;

namespace FastSmr.Engine;

/// <summary>What every replication back-end needs: who this replica is, who the others are, where it keeps its data, how durable.</summary>
public abstract class ReplicationBackendOptions
{
    /// <summary>This replica's id; must be one of <see cref="Members"/>.</summary>
    public ReplicaId ReplicaId { get; set; }

    /// <summary>The static membership: every replica's id and peer (Raft) endpoint.</summary>
    public IReadOnlyList<(ReplicaId Id, IPEndPoint RaftEndPoint)> Members { get; set; } = [];

    /// <summary>Where the back-end keeps its log and snapshots.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>When an entry counts as acknowledged (<see cref="DurabilityMode"/>); durable by default.</summary>
    public DurabilityMode Durability { get; set; } = DurabilityMode.Durable;

    /// <summary>Logging for the back-end's own components.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>
    /// Optional dial addresses per peer id: this replica connects to peer <c>id</c> there instead of at its member endpoint,
    /// which stays its identity (the chaos harness puts a proxy port per ordered pair of replicas here).
    /// </summary>
    public IReadOnlyDictionary<ReplicaId, IPEndPoint> PeerRoutes { get; set; } = new Dictionary<ReplicaId, IPEndPoint>();

    /// <summary>
    /// Mutual TLS on the peer port with this replica's member certificate: a peer must present the certificate of the
    /// member it claims to be. Null runs the peer port in plaintext, which trusts whoever can reach it (<c>--insecure</c>;
    /// see native-notes/security.md).
    /// </summary>
    public TlsCredentials? Tls { get; set; }

    /// <summary>The election timeouts (and, derived from them, heartbeats and the lease).</summary>
    public ElectionTiming Election { get; set; } = new();

    /// <summary>When to snapshot and compact the log.</summary>
    public SnapshotPolicy Snapshots { get; set; } = new();

    /// <summary>
    /// The clock every timer of the back-end reads (monotonic timestamps), so that a simulation can drive time; the
    /// system clock by default.
    /// </summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>
    /// Checks what every back-end shares: a data directory, unique non-zero ids with this replica among them, peer routes
    /// only to other members, the election timing and the snapshot policy.
    /// </summary>
    protected void ValidateShared()
    {
        ValidateMembership();
        foreach (var (peer, _) in PeerRoutes)
        {
            if (peer == ReplicaId || !Members.Any(m => m.Id == peer))
            {
                throw new ArgumentException("a peer route to " + peer.ToString() + ", which is not another member", nameof(PeerRoutes));
            }
        }

        ArgumentNullException.ThrowIfNull(Election, nameof(Election));
        ArgumentNullException.ThrowIfNull(Snapshots, nameof(Snapshots));
        ArgumentNullException.ThrowIfNull(Time, nameof(Time));
        Election.Validate();
        Snapshots.Validate();
        if (Tls is not null && Tls.Identity != CertificateIdentity.Member(ReplicaId))
        {
            throw new ArgumentException(
                "the certificate is " + Tls.Identity.ToString() + "'s, but this is replica " + ReplicaId.ToString(),
                nameof(Tls)
            );
        }
    }

    private void ValidateMembership()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ArgumentException("DataDirectory is required", nameof(DataDirectory));
        }

        if (Members.Count == 0)
        {
            throw new ArgumentException("Members is empty", nameof(Members));
        }

        var ids = new HashSet<ReplicaId>();
        foreach (var (id, _) in Members)
        {
            if (!id.IsSome || id.Value > int.MaxValue || !ids.Add(id))
            {
                throw new ArgumentException("member ids must be unique and in [1, 2^31)", nameof(Members));
            }
        }

        if (!ids.Contains(ReplicaId))
        {
            throw new ArgumentException("ReplicaId is not among Members", nameof(ReplicaId));
        }
    }
}
