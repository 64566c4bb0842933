namespace FastSmr.Server;

/// <summary>
/// The replication back-end a replica runs. Every replica of a cluster must run the same one. On the command line and
/// in JSON it is spelt in lower case ("dotnext", "native"); parsing ignores case.
/// </summary>
public enum BackendKind
{
    /// <summary>Stock DotNext.Net.Cluster <c>RaftCluster</c> + <c>WriteAheadLog</c>, made durable: the reference back-end.</summary>
    DotNext,

    /// <summary>FastSmr.Raft + FastSmr.Log + the pipelined peer transport.</summary>
    Native,
}
