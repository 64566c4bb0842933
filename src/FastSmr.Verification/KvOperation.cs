using System.Globalization;
using System.Text;

namespace FastSmr.Verification;

/// <summary>
/// One client operation on one key, with its invocation and return times from one monotonic clock. An
/// <see cref="OperationStatus.Unknown"/> operation has no return time (it may take effect at any time after its
/// invocation, or never) and no output.
/// </summary>
public sealed record KvOperation
{
    /// <summary>The client (one operation in flight per client).</summary>
    public int Client { get; init; }

    /// <summary>When the client invoked it (any monotonic unit, the same for the whole history).</summary>
    public long Invoke { get; init; }

    /// <summary>When the client got the answer; ignored for Unknown operations.</summary>
    public long Return { get; init; }

    /// <summary>The operation.</summary>
    public KvOperationKind Kind { get; init; }

    /// <summary>The key.</summary>
    public string Key { get; init; } = "";

    /// <summary>The value written (Put, CompareAndSet).</summary>
    public string? Value { get; init; }

    /// <summary>The expected value of a CompareAndSet; null means "the key must be absent".</summary>
    public string? Expected { get; init; }

    /// <summary>The increment (Increment).</summary>
    public long Delta { get; init; }

    /// <summary>What the client learned.</summary>
    public OperationStatus Status { get; init; }

    /// <summary>The value read by a Get (null: absent), or the new value of an Increment in decimal.</summary>
    public string? OutputValue { get; init; }

    /// <summary>Whether a Delete found the key, or a CompareAndSet succeeded.</summary>
    public bool OutputFlag { get; init; }

    /// <summary>A readable line for reports.</summary>
    public string Describe(long origin)
    {
        var builder = new StringBuilder();
        builder.Append(CultureInfo.InvariantCulture, $"client {Client, 3}  [{(Invoke - origin) / 1000.0, 10:F1} µs .. ");
        builder.Append(
            Status == OperationStatus.Unknown
                ? "         ?   "
                : string.Create(CultureInfo.InvariantCulture, $"{(Return - origin) / 1000.0, 10:F1} µs")
        );
        builder.Append("]  ");
        builder.Append(
            Kind switch
            {
                KvOperationKind.Put => $"put({Key}, {Value})",
                KvOperationKind.Get => $"get({Key})",
                KvOperationKind.Delete => $"delete({Key})",
                KvOperationKind.CompareAndSet => $"cas({Key}, {Expected ?? "<absent>"} -> {Value})",
                _ => string.Create(CultureInfo.InvariantCulture, $"incr({Key}, {Delta})"),
            }
        );
        builder.Append(
            Status switch
            {
                OperationStatus.Unknown => "  => unknown",
                OperationStatus.Fail => "  => fail",
                _ => Kind switch
                {
                    KvOperationKind.Get => "  => " + (OutputValue ?? "<absent>"),
                    KvOperationKind.Delete => OutputFlag ? "  => deleted" : "  => not found",
                    KvOperationKind.CompareAndSet => OutputFlag ? "  => swapped" : "  => mismatch",
                    KvOperationKind.Increment => "  => " + OutputValue,
                    _ => "  => ok",
                },
            }
        );
        return builder.ToString();
    }
}
