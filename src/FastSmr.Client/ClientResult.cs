using FastSmr.Core.Protocol;

namespace FastSmr.Client;

/// <summary>The outcome of a client request.</summary>
/// <param name="Status">The outcome; see <see cref="SubmitStatus"/> for which statuses mean "not appended".</param>
/// <param name="Output">The state machine's output for <see cref="SubmitStatus.Ok"/>, otherwise empty.</param>
/// <param name="Attempts">How many times the request was sent (retries of not-appended outcomes included).</param>
public readonly record struct ClientResult(SubmitStatus Status, byte[] Output, int Attempts);
