using Microsoft.Extensions.Logging;

namespace FastSmr.Server;

/// <summary>The server's log messages. Event ids 4000-4099 belong to this assembly (docs/architecture.md, "Logging").</summary>
internal static partial class ServerLog
{
    [LoggerMessage(EventId = 4000, Level = LogLevel.Warning, Message = "client {Remote} violated the protocol: {Reason}; closing")]
    public static partial void ProtocolViolation(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Error, Message = "request failed inside the engine")]
    public static partial void RequestFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Warning, Message = "client {Remote} closed: {Reason}")]
    public static partial void ClientClosed(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Warning, Message = "connection limit {Limit} reached; refusing {Remote}")]
    public static partial void ConnectionRefused(ILogger logger, int limit, string remote);

    [LoggerMessage(
        EventId = 4003,
        Level = LogLevel.Information,
        Message = "replica {Id} serving clients on {ClientEndPoint}, peers on {RaftEndPoint}, back-end {Backend}, durability {Durability}"
    )]
    public static partial void Started(
        ILogger logger,
        ReplicaId id,
        string clientEndPoint,
        string raftEndPoint,
        BackendKind backend,
        FastSmr.Engine.DurabilityMode durability
    );

    [LoggerMessage(
        EventId = 4006,
        Level = LogLevel.Warning,
        Message = "{Count} more client warnings (refused, violating, closed) were not logged (at most 20 lines a second)"
    )]
    public static partial void ClientWarningsSuppressed(ILogger logger, long count);

    [LoggerMessage(
        EventId = 4005,
        Level = LogLevel.Warning,
        Message = "replica {Id} runs INSECURE: both ports in plaintext, trusting whoever can reach them (no --certs)"
    )]
    public static partial void Insecure(ILogger logger, ReplicaId id);
}
