namespace FastSmr.Core.StateMachines;

/// <summary>Where a command sits in the replicated log, passed to <see cref="IStateMachine.Apply"/>.</summary>
/// <param name="Index">The log index of the entry that carries the command.</param>
/// <param name="Ordinal">The command's position within that entry (0-based).</param>
/// <param name="LeaderTimestampMicros">
/// The leader's timestamp for the entry in microseconds since the Unix epoch. It never goes backwards from one
/// entry to the next, so a state machine can use it as its clock and stay deterministic.
/// </param>
/// <param name="ClientId">The client id of the session that sent the command (0 for none).</param>
/// <param name="Sequence">The client's sequence number for the command (0 for none).</param>
public readonly record struct ApplyContext(LogIndex Index, int Ordinal, long LeaderTimestampMicros, ulong ClientId, ulong Sequence);
