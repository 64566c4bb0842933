using System.Buffers;
using FastSmr.Core.Kv;
using FastSmr.Core.StateMachines;

namespace FastSmr.Simulation;

/// <summary>
/// The KV state machine with a witness: every command applied, at (log index, ordinal), is hashed into a map shared by
/// all replicas of a run; a replica that applies other bytes at a place another one filled — a divergence — fails the
/// run at once, and so does a replica that applies out of order.
/// </summary>
public sealed class RecordingStateMachine(Dictionary<(long Index, int Ordinal), ulong> applied, Action<string> fail) : IStateMachine
{
    private readonly KvStateMachine inner = new();
    private (long Index, int Ordinal) last;

    /// <inheritdoc />
    public void Apply(in ApplyContext context, ReadOnlySpan<byte> command, IBufferWriter<byte> output)
    {
        var at = (context.Index.Value, context.Ordinal);
        if (at.CompareTo(last) <= 0)
        {
            fail("applied " + at + " after " + last);
        }

        last = at;
        var hash = 14695981039346656037UL;
        foreach (var b in command)
        {
            hash = (hash ^ b) * 1099511628211UL;
        }

        if (applied.TryGetValue(at, out var seen) && seen != hash)
        {
            fail("replicas applied different commands at index " + at.Item1 + ", ordinal " + at.Item2);
        }

        applied[at] = hash;
        inner.Apply(context, command, output);
    }

    /// <inheritdoc />
    public void Query(ReadOnlySpan<byte> query, IBufferWriter<byte> output) => inner.Query(query, output);

    /// <inheritdoc />
    public void WriteSnapshot(Stream destination) => inner.WriteSnapshot(destination);

    /// <inheritdoc />
    public void RestoreSnapshot(Stream source)
    {
        inner.RestoreSnapshot(source);
        last = default; // the snapshot's own index is not known here; the next applied entry is after it
    }

    /// <inheritdoc />
    public StateDigest GetDigest() => inner.GetDigest();
}
