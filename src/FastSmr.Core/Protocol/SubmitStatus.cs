namespace FastSmr.Core.Protocol;

/// <summary>The outcome of a client request. Expected outcomes are values, not exceptions.</summary>
/// <remarks>
/// <see cref="NotLeader"/>, <see cref="Busy"/>, <see cref="Rejected"/>, <see cref="Timeout"/> and <see cref="Unavailable"/>
/// all mean the command was <b>not appended</b> to the log, so retrying it is safe. <see cref="Unknown"/> means it was
/// (or may have been) sent and no answer came: it may or may not take effect, and only an idempotent command may be
/// retried automatically after it.
/// </remarks>
public enum SubmitStatus : ushort
{
    /// <summary>Committed and applied; the output is attached.</summary>
    Ok = 0,

    /// <summary>This replica is not the leader; the leader's replica id (0 if unknown) is attached. Not appended.</summary>
    NotLeader = 1,

    /// <summary>A queue or window is full. Not appended.</summary>
    Busy = 2,

    /// <summary>The request is invalid (too large, bad consistency level, ...). Not appended.</summary>
    Rejected = 3,

    /// <summary>
    /// The request may or may not have taken effect (deadline passed after append, connection lost, leader lost before
    /// commit).
    /// </summary>
    Unknown = 4,

    /// <summary>The deadline expired before the command was appended; it was dropped. Not appended.</summary>
    Timeout = 5,

    /// <summary>No leader is known or no majority can be reached. Not appended.</summary>
    Unavailable = 6,

    /// <summary>The peer violated the protocol; the connection is closed.</summary>
    ProtocolError = 7,
}
