using System.Buffers;
using FastSmr.Core.Protocol;

namespace FastSmr.Engine;

/// <summary>
/// The outcome of a submit or a read: a status and, for <see cref="SubmitStatus.Ok"/>, the output in a pooled buffer.
/// Dispose it exactly once when done with <see cref="Output"/>.
/// </summary>
public readonly struct SubmitResult : IDisposable
{
    private readonly byte[]? rented;
    private readonly int length;

    internal SubmitResult(SubmitStatus status, ReplicaId leaderId, byte[]? rented, int length)
    {
        Status = status;
        LeaderId = leaderId;
        this.rented = rented;
        this.length = length;
    }

    /// <summary>The outcome.</summary>
    public SubmitStatus Status { get; }

    /// <summary>For <see cref="SubmitStatus.NotLeader"/>: the leader's replica id, 0 if unknown.</summary>
    public ReplicaId LeaderId { get; }

    /// <summary>The state machine's output (empty unless <see cref="Status"/> is Ok). Valid until <see cref="Dispose"/>.</summary>
    public ReadOnlyMemory<byte> Output => rented is null ? ReadOnlyMemory<byte>.Empty : rented.AsMemory(0, length);

    /// <summary>A result with no output.</summary>
    public static SubmitResult FromStatus(SubmitStatus status, ReplicaId leaderId = default) => new(status, leaderId, null, 0);

    /// <summary>An Ok result that copies <paramref name="output"/> into a pooled buffer.</summary>
    public static SubmitResult FromOutput(ReadOnlySpan<byte> output)
    {
        if (output.IsEmpty)
        {
            return new SubmitResult(SubmitStatus.Ok, ReplicaId.None, null, 0);
        }

        var buffer = ArrayPool<byte>.Shared.Rent(output.Length);
        output.CopyTo(buffer);
        return new SubmitResult(SubmitStatus.Ok, ReplicaId.None, buffer, output.Length);
    }

    /// <summary>Returns the output buffer to the pool.</summary>
    public void Dispose()
    {
        if (rented is not null)
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
