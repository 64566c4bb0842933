namespace FastSmr.Core.StateMachines;

/// <summary>Where a command sits in the replicated log, passed to <see cref="IStateMachine.Apply"/>.</summary>
/// <param name="Index">The log index of the entry that carries the command.</param>
/// <param name="Ordinal">The command's position within that entry (0-based).</param>
/// <param name="LeaderTimestampMicros">
/// The leader's timestamp for the entry in microseconds since the Unix epoch. It never goes backwards from one
/// entry to the next, so a state machine can use it as its clock and stay deterministic.
/// </param>
/// <param name="ClientId">
/// The client id of the session that sent the command (0 for none). Its upper half is the <see cref="Owner"/>.
/// </param>
/// <param name="Sequence">The client's sequence number for the command (0 for none).</param>
public readonly record struct ApplyContext(LogIndex Index, int Ordinal, long LeaderTimestampMicros, ulong ClientId, ulong Sequence)
{
    /// <summary>
    /// The client number in the certificate of the connection that sent the command, when the replicas run mutual TLS:
    /// the server refuses a record whose <see cref="ClientId"/> carries another, so a state machine can trust it as the
    /// command's owner. Without TLS (<c>--insecure</c>) it is whatever the client wrote.
    /// </summary>
    public uint Owner => (uint)(ClientId >> 32);
}
