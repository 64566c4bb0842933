using FastSmr.Core.Protocol;
using Microsoft.Extensions.Logging;

namespace FastSmr.Engine;

/// <summary>The engine's log messages. Event ids 1000-1099 belong to this assembly (docs/architecture.md, "Logging").</summary>
internal static partial class EngineLog
{
    [LoggerMessage(
        EventId = 1001,
        Level = LogLevel.Information,
        Message = "replica {ReplicaId}: role {Role}, term {Term}, leader {LeaderId}"
    )]
    public static partial void LeadershipChanged(ILogger logger, ReplicaId replicaId, ReplicaRole role, long term, ReplicaId leaderId);

    [LoggerMessage(EventId = 1002, Level = LogLevel.Warning, Message = "proposal failed")]
    public static partial void ProposeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1003, Level = LogLevel.Error, Message = "committed entry {Index} is malformed and was skipped: {Error}")]
    public static partial void MalformedEntry(ILogger logger, long index, string error);

    [LoggerMessage(EventId = 1005, Level = LogLevel.Debug, Message = "replica {ReplicaId}: no-op for term {Term}: {Outcome}")]
    public static partial void NoOpProposed(ILogger logger, ReplicaId replicaId, long term, ProposeOutcome outcome);

    [LoggerMessage(
        EventId = 1006,
        Level = LogLevel.Critical,
        Message = "the state machine threw applying entry {Index}, command {Ordinal}; stopping the replica"
    )]
    public static partial void StateMachineFailed(ILogger logger, Exception exception, long index, int ordinal);

    [LoggerMessage(EventId = 1004, Level = LogLevel.Information, Message = "replica {ReplicaId}: restored snapshot at index {Index}")]
    public static partial void SnapshotRestored(ILogger logger, ReplicaId replicaId, long index);
}
