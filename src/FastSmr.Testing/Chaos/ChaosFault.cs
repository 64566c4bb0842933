namespace FastSmr.Testing.Chaos;

/// <summary>The faults the chaos nemesis injects; each lasts a few seconds and is then healed.</summary>
internal enum ChaosFault
{
    /// <summary>kill -9 the leader; restart it at the heal.</summary>
    KillLeader,

    /// <summary>kill -9 a follower; restart it at the heal.</summary>
    KillFollower,

    /// <summary>SIGSTOP a replica (the leader two times in three); SIGCONT at the heal.</summary>
    Pause,

    /// <summary>Split the replicas into a minority and a majority that cannot reach each other.</summary>
    Partition,

    /// <summary>Cut the leader off from every other replica (its clients still reach it).</summary>
    IsolateLeader,

    /// <summary>Split the others into two halves that reach each other only through one bridge replica.</summary>
    Bridge,

    /// <summary>Lose everything the leader sends to its peers, but nothing it receives.</summary>
    OneWay,

    /// <summary>Delay every peer link by tens of milliseconds.</summary>
    SlowNetwork,

    /// <summary>Cut every client connection (twice) so clients reconnect and retry.</summary>
    ClientCut,
}

/// <summary>Names of faults in reports.</summary>
internal static class ChaosFaultNames
{
    public static string Name(this ChaosFault fault) =>
        fault switch
        {
            ChaosFault.KillLeader => "kill-leader",
            ChaosFault.KillFollower => "kill-follower",
            ChaosFault.Pause => "pause",
            ChaosFault.Partition => "partition",
            ChaosFault.IsolateLeader => "isolate-leader",
            ChaosFault.Bridge => "bridge",
            ChaosFault.OneWay => "one-way",
            ChaosFault.SlowNetwork => "slow-network",
            _ => "client-cut",
        };
}
