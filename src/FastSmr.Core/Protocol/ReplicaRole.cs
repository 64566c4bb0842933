namespace FastSmr.Core.Protocol;

/// <summary>A replica's role as reported by the status frame.</summary>
public enum ReplicaRole : byte
{
    /// <summary>Follows a leader (or waits for one).</summary>
    Follower = 0,

    /// <summary>Standing for election.</summary>
    Candidate = 1,

    /// <summary>Orders commands.</summary>
    Leader = 2,

    /// <summary>Not running.</summary>
    Stopped = 3,
}
