using FastSmr.Core.Protocol;
using Microsoft.Extensions.Logging;

namespace FastSmr.Engine;

internal static partial class Log
{
    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "replica {ReplicaId}: role {Role}, term {Term}, leader {LeaderId}")]
    public static partial void LeadershipChanged(ILogger logger, uint replicaId, ReplicaRole role, long term, uint leaderId);

    [LoggerMessage(EventId = 2, Level = LogLevel.Warning, Message = "proposal failed")]
    public static partial void ProposeFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 3, Level = LogLevel.Error, Message = "committed entry {Index} is malformed and was skipped: {Error}")]
    public static partial void MalformedEntry(ILogger logger, long index, string error);

    [LoggerMessage(EventId = 5, Level = LogLevel.Debug, Message = "replica {ReplicaId}: no-op for term {Term}: {Outcome}")]
    public static partial void NoOpProposed(ILogger logger, uint replicaId, long term, ProposeOutcome outcome);

    [LoggerMessage(EventId = 6, Level = LogLevel.Critical, Message = "the state machine threw applying entry {Index}, command {Ordinal}; stopping the replica")]
    public static partial void StateMachineFailed(ILogger logger, Exception exception, long index, int ordinal);

    [LoggerMessage(EventId = 4, Level = LogLevel.Information, Message = "replica {ReplicaId}: restored snapshot at index {Index}")]
    public static partial void SnapshotRestored(ILogger logger, uint replicaId, long index);
}
