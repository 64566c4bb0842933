using System.Net;
using Microsoft.Extensions.Logging;

namespace FastSmr.Native;

/// <summary>
/// The native back-end's log messages. Event ids 3000-3099 belong to this assembly (3000-3049 the back-end, 3050-3099 the
/// peer transport); every assembly has its own range (docs/architecture.md, "Logging").
/// </summary>
internal static partial class NativeLog
{
    [LoggerMessage(
        EventId = 3000,
        Level = LogLevel.Warning,
        Message = "replica {ReplicaId}: the machine restarted uncleanly since this replica last ran in memory mode; "
            + "it rejoins as a non-voter until it has caught up"
    )]
    public static partial void Rejoining(ILogger logger, ReplicaId replicaId);

    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "replica {ReplicaId}: caught up from the leader; voting again")]
    public static partial void Rejoined(ILogger logger, ReplicaId replicaId);

    [LoggerMessage(
        EventId = 3008,
        Level = LogLevel.Warning,
        Message = "replica {ReplicaId} starts with no state (a new data directory, or one that was wiped): it neither "
            + "votes nor campaigns until it has caught up from a leader, or every member is as new as it is"
    )]
    public static partial void StartsEmpty(ILogger logger, ReplicaId replicaId);

    [LoggerMessage(
        EventId = 3009,
        Level = LogLevel.Information,
        Message = "replica {ReplicaId}: {Fresh} of {Members} members, itself included, have no state: a new cluster; voting"
    )]
    public static partial void NewCluster(ILogger logger, ReplicaId replicaId, int fresh, int members);

    [LoggerMessage(
        EventId = 3010,
        Level = LogLevel.Warning,
        Message = "{Count} more peer connections were refused without a log line (at most 20 lines a second)"
    )]
    public static partial void PeerRefusalsSuppressed(ILogger logger, long count);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Warning, Message = "snapshot {Path} skipped: {Reason}")]
    public static partial void SnapshotSkipped(ILogger logger, string path, string reason);

    [LoggerMessage(
        EventId = 3003,
        Level = LogLevel.Critical,
        Message = "replica {ReplicaId} stops: its storage or its state machine failed"
    )]
    public static partial void Fatal(ILogger logger, ReplicaId replicaId, Exception exception);

    [LoggerMessage(
        EventId = 3004,
        Level = LogLevel.Information,
        Message = "replica {ReplicaId}: snapshot at {Index} installed from the leader"
    )]
    public static partial void SnapshotInstalled(ILogger logger, ReplicaId replicaId, long index);

    [LoggerMessage(
        EventId = 3006,
        Level = LogLevel.Warning,
        Message = "replica {ReplicaId}: dropped {Count} peer message(s) no correct replica sends, the last from replica {Peer}: {Reason}"
    )]
    public static partial void MessagesDropped(ILogger logger, ReplicaId replicaId, long count, ReplicaId peer, string reason);

    [LoggerMessage(
        EventId = 3007,
        Level = LogLevel.Warning,
        Message = "replica {ReplicaId}: snapshot {Index} from replica {Peer} refused and deleted, it does not restore: {Reason}"
    )]
    public static partial void SnapshotRefused(ILogger logger, ReplicaId replicaId, long index, ReplicaId peer, string reason);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Debug, Message = "replica {ReplicaId}: snapshot at {Index} taken, log compacted")]
    public static partial void SnapshotTaken(ILogger logger, ReplicaId replicaId, long index);

    [LoggerMessage(EventId = 3050, Level = LogLevel.Warning, Message = "peer connection from {Remote} refused: {Reason}")]
    public static partial void PeerRefused(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 3051, Level = LogLevel.Debug, Message = "connection to replica {Peer} at {EndPoint} failed: {Reason}")]
    public static partial void ConnectFailed(ILogger logger, int peer, IPEndPoint endPoint, string reason);

    [LoggerMessage(EventId = 3052, Level = LogLevel.Information, Message = "snapshot {Index} sent to replica {Peer} ({Bytes} bytes)")]
    public static partial void SnapshotSent(ILogger logger, long index, int peer, long bytes);

    [LoggerMessage(EventId = 3053, Level = LogLevel.Warning, Message = "snapshot {Index} to replica {Peer} failed: {Reason}")]
    public static partial void SnapshotFailed(ILogger logger, long index, int peer, string reason);

    [LoggerMessage(
        EventId = 3054,
        Level = LogLevel.Error,
        Message = "snapshot {Index} is damaged on this replica's disk and was not sent to replica {Peer}: {Reason}; a new one is taken"
    )]
    public static partial void SnapshotDamaged(ILogger logger, long index, int peer, string reason);
}
