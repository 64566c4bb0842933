using System.Globalization;

namespace FastSmr;

/// <summary>A replica's id within its cluster: 1 to 2^31 − 1; 0 means "none" (no leader known, no vote given).</summary>
/// <remarks>A distinct type so that an id can never be mixed up with a count, a port or an index.</remarks>
/// <param name="Value">The raw id.</param>
public readonly record struct ReplicaId(uint Value) : IComparable<ReplicaId>
{
    /// <summary>No replica.</summary>
    public static ReplicaId None => default;

    /// <summary>Whether this names a replica (is not <see cref="None"/>).</summary>
    public bool IsSome => Value != 0;

    /// <inheritdoc />
    public int CompareTo(ReplicaId other) => Value.CompareTo(other.Value);

    /// <summary>Compares two ids.</summary>
    public static bool operator <(ReplicaId left, ReplicaId right) => left.Value < right.Value;

    /// <summary>Compares two ids.</summary>
    public static bool operator >(ReplicaId left, ReplicaId right) => left.Value > right.Value;

    /// <summary>Compares two ids.</summary>
    public static bool operator <=(ReplicaId left, ReplicaId right) => left.Value <= right.Value;

    /// <summary>Compares two ids.</summary>
    public static bool operator >=(ReplicaId left, ReplicaId right) => left.Value >= right.Value;

    /// <inheritdoc />
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
