using Microsoft.Extensions.Logging;

namespace FastSmr.Server;

internal static partial class Log
{
    [LoggerMessage(EventId = 100, Level = LogLevel.Warning, Message = "client {Remote} violated the protocol: {Reason}; closing")]
    public static partial void ProtocolViolation(ILogger logger, string remote, string reason);

    [LoggerMessage(EventId = 101, Level = LogLevel.Error, Message = "request failed inside the engine")]
    public static partial void RequestFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 102, Level = LogLevel.Warning, Message = "connection limit {Limit} reached; refusing {Remote}")]
    public static partial void ConnectionRefused(ILogger logger, int limit, string remote);

    [LoggerMessage(EventId = 103, Level = LogLevel.Information, Message = "replica {Id} serving clients on {ClientEndPoint}, peers on {RaftEndPoint}, back-end {Backend}, durability {Durability}")]
    public static partial void Started(ILogger logger, uint id, string clientEndPoint, string raftEndPoint, BackendKind backend, FastSmr.Engine.DurabilityMode durability);
}
