using FastSmr.Core.Protocol;

namespace FastSmr.Client;

/// <summary>A reply frame as received.</summary>
internal readonly record struct ClientReply(FrameType Type, SubmitStatus Status, byte[] Body);
