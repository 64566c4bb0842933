namespace FastSmr.Server;

/// <summary>One replica of the cluster as every replica's configuration lists it.</summary>
public sealed class MemberConfig
{
    /// <summary>The replica id (non-zero, unique).</summary>
    public ReplicaId Id { get; set; }

    /// <summary>The peer (Raft) endpoint, "host:port". Every replica must spell it the same way.</summary>
    public string Raft { get; set; } = "";

    /// <summary>The client protocol endpoint, "host:port".</summary>
    public string Client { get; set; } = "";
}
