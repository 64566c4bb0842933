namespace FastSmr.Engine;

/// <summary>The outcome of <see cref="IReplicationBackend.ProposeAsync"/>.</summary>
public enum ProposeOutcome
{
    /// <summary>The entry is committed (it may not be applied yet).</summary>
    Committed,

    /// <summary>This replica is not the leader; nothing was appended.</summary>
    NotLeader,

    /// <summary>
    /// The entry was appended but leadership was lost or the wait was cancelled before it committed; it may still
    /// commit.
    /// </summary>
    Unknown,
}
