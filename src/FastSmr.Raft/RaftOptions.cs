namespace FastSmr.Raft;

/// <summary>How one replica's core behaves. Times are in microseconds of the replica's own monotonic clock.</summary>
public sealed record RaftOptions
{
    /// <summary>This replica's id (1..).</summary>
    public required ReplicaId Id { get; init; }

    /// <summary>Ids of the voting members at bootstrap (the log's configuration entries and snapshots take over).</summary>
    public required IReadOnlyList<ReplicaId> Voters { get; init; }

    /// <summary>Ids of the non-voting members at bootstrap.</summary>
    public IReadOnlyList<ReplicaId> Learners { get; init; } = [];

    /// <summary>Minimum election timeout; each timeout is drawn from [min, 2 × min). Default 1 s.</summary>
    public long ElectionTimeoutMinUs { get; init; } = 1_000_000;

    /// <summary>Heartbeat interval (a lease round each). Default 100 ms.</summary>
    public long HeartbeatIntervalUs { get; init; } = 100_000;

    /// <summary>Pre-vote before campaigning (thesis §9.6). Default on.</summary>
    public bool PreVote { get; init; } = true;

    /// <summary>A leader that has not heard from a majority within a minimum election timeout steps down. Default on.</summary>
    public bool CheckQuorum { get; init; } = true;

    /// <summary>AppendEntries messages in flight per follower at most.</summary>
    public int InflightMessagesMax { get; init; } = 16;

    /// <summary>Entry bytes in flight per follower at most.</summary>
    public long InflightBytesMax { get; init; } = 8L << 20;

    /// <summary>Entry bytes per AppendEntries at most (one entry larger than this still goes alone).</summary>
    public long MessageBytesMax { get; init; } = 1L << 20;

    /// <summary>Entries proposed and not yet committed at most; past it, proposals are answered Busy.</summary>
    public int UncommittedEntriesMax { get; init; } = 65_536;

    /// <summary>The bound ρ on clock-rate error between replicas; the lease is the minimum election timeout × (1 − ρ).</summary>
    public double ClockDriftBound { get; init; } = 0.01;

    /// <summary>Seed of the replica's randomized election timeouts (deterministic: same seed, same timeouts).</summary>
    public ulong Seed { get; init; } = 1;

    /// <summary>Test-only: deliberately broken behaviour, to prove the simulator catches it.</summary>
    internal RaftBug Bug { get; init; }

    internal void Validate()
    {
        if (!Id.IsSome || Id.Value > int.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(Id), Id, "replica ids are in [1, 2^31)");
        }

        _ = new ClusterConfig(Voters, Learners); // throws on empty, duplicate or non-positive ids

        if (HeartbeatIntervalUs <= 0 || ElectionTimeoutMinUs < 2 * HeartbeatIntervalUs)
        {
            throw new ArgumentOutOfRangeException(
                nameof(ElectionTimeoutMinUs),
                "the election timeout must be at least two heartbeat intervals"
            );
        }

        if (InflightMessagesMax < 1 || InflightBytesMax < 1 || MessageBytesMax < 1 || UncommittedEntriesMax < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(InflightMessagesMax), "bounds must be positive");
        }

        if (ClockDriftBound is < 0 or >= 1)
        {
            throw new ArgumentOutOfRangeException(nameof(ClockDriftBound), "ρ must be in [0, 1)");
        }
    }
}

/// <summary>Test-only injected bugs: each breaks one safety rule so the simulator can prove it notices.</summary>
internal enum RaftBug
{
    /// <summary>None.</summary>
    None,

    /// <summary>The leader commits entries of older terms by counting replicas (the figure-8 bug, thesis §3.6.2).</summary>
    CommitOldTermByCounting,

    /// <summary>A follower acknowledges entries on receipt, before they are persisted.</summary>
    AcknowledgeBeforePersist,

    /// <summary>A follower grants votes inside its lease promise.</summary>
    VoteInsideLease,
}
