namespace FastSmr.Core.Protocol;

/// <summary>The fixed header of every client protocol frame (see <see cref="FrameCodec"/>).</summary>
/// <param name="BodyLength">The number of body bytes after the header.</param>
/// <param name="Type">The frame type.</param>
/// <param name="Flags">Per-type flags (the read consistency for <see cref="FrameType.Read"/>).</param>
/// <param name="Status">The outcome, in replies.</param>
/// <param name="RequestId">Chosen by the client; echoed in the reply.</param>
/// <param name="TimeoutMicros">The request's remaining time budget when sent; 0 means the server's default.</param>
public readonly record struct FrameHeader(
    int BodyLength,
    FrameType Type,
    byte Flags,
    SubmitStatus Status,
    ulong RequestId,
    uint TimeoutMicros
);
