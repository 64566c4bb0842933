using System.Buffers;

namespace FastSmr.Core.StateMachines;

/// <summary>
/// A deterministic state machine replicated by FastSmr. Every replica applies the same commands in the same
/// order and must reach the same state: an implementation never reads the wall clock, random numbers, the
/// environment or anything else that differs between replicas. Time comes from <see cref="ApplyContext.LeaderTimestampMicros"/>.
/// </summary>
/// <remarks>
/// Concurrency profile: the engine never calls <see cref="Apply"/>, <see cref="Query"/>, <see cref="WriteSnapshot"/>,
/// <see cref="RestoreSnapshot"/> or <see cref="GetDigest"/> concurrently with each other, unless the implementation
/// opts in through <see cref="Concurrency"/>.
/// </remarks>
public interface IStateMachine
{
    /// <summary>Which calls may overlap. The default, <see cref="StateMachineConcurrency.None"/>, serialises all calls.</summary>
    StateMachineConcurrency Concurrency => StateMachineConcurrency.None;

    /// <summary>Applies one committed command and writes its output.</summary>
    /// <param name="context">Where the command sits in the log and the leader's timestamp for its entry.</param>
    /// <param name="command">The command bytes exactly as the client sent them. Valid only during the call.</param>
    /// <param name="output">Caller-supplied destination of the output; write nothing for an empty output.</param>
    /// <remarks>
    /// A malformed command, or one the state cannot take (too large, a limit reached), must not throw: it must be
    /// answered deterministically (for example with an error code in <paramref name="output"/>), because every
    /// replica applies it. An exception here is a programming error: the state may be half-changed and every replica
    /// throws at the same entry, so the replica stops there (the entry is logged, its commands answered Unknown,
    /// <c>fastsmr serve</c> exits with code 1) until a state machine that does not throw on it is deployed.
    /// </remarks>
    void Apply(in ApplyContext context, ReadOnlySpan<byte> command, IBufferWriter<byte> output);

    /// <summary>Runs a read-only query against the current state.</summary>
    /// <param name="query">The query bytes. Valid only during the call.</param>
    /// <param name="output">Caller-supplied destination of the answer.</param>
    void Query(ReadOnlySpan<byte> query, IBufferWriter<byte> output);

    /// <summary>
    /// Writes the whole state to <paramref name="destination"/>; <see cref="RestoreSnapshot"/> must be able to read it
    /// back.
    /// </summary>
    void WriteSnapshot(Stream destination);

    /// <summary>Replaces the whole state with one written by <see cref="WriteSnapshot"/>.</summary>
    void RestoreSnapshot(Stream source);

    /// <summary>A digest of the current state. Two replicas at the same applied index must return the same digest.</summary>
    StateDigest GetDigest();
}
