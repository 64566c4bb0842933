using FastSmr.Core.Protocol;
using FastSmr.Engine;

namespace FastSmr.Server;

/// <summary>One frame waiting to be written to a client connection.</summary>
/// <param name="Type">The reply frame type.</param>
/// <param name="RequestId">The request it answers.</param>
/// <param name="Result">The outcome; its pooled output is returned once the frame is written.</param>
/// <param name="Text">An error message, for <see cref="FrameType.Error"/>.</param>
internal readonly record struct ServerReply(FrameType Type, ulong RequestId, SubmitResult Result, string? Text = null);
