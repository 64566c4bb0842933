using System.Net;
using Microsoft.Extensions.Logging;

namespace FastSmr.Engine;

/// <summary>What every replication back-end needs: who this replica is, who the others are, where it keeps its data, how durable.</summary>
public abstract class ReplicationBackendOptions
{
    /// <summary>This replica's id; must be one of <see cref="Members"/>.</summary>
    public uint ReplicaId { get; set; }

    /// <summary>The static membership: every replica's id and peer (Raft) endpoint.</summary>
    public IReadOnlyList<(uint Id, IPEndPoint RaftEndPoint)> Members { get; set; } = [];

    /// <summary>Where the back-end keeps its log and snapshots.</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>When an entry counts as acknowledged (<see cref="DurabilityMode"/>); durable by default.</summary>
    public DurabilityMode Durability { get; set; } = DurabilityMode.Durable;

    /// <summary>Logging for the back-end's own components.</summary>
    public ILoggerFactory? LoggerFactory { get; set; }

    /// <summary>Checks the members shared by every back-end: a data directory, unique non-zero ids, this replica among them.</summary>
    protected void ValidateMembership()
    {
        if (string.IsNullOrWhiteSpace(DataDirectory))
        {
            throw new ArgumentException("DataDirectory is required", nameof(DataDirectory));
        }

        if (Members.Count == 0)
        {
            throw new ArgumentException("Members is empty", nameof(Members));
        }

        var ids = new HashSet<uint>();
        foreach (var (id, _) in Members)
        {
            if (id == 0 || id > int.MaxValue || !ids.Add(id))
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
