namespace FastSmr.Core;

/// <summary>The position of an entry in the replicated log (1-based; 0 means "before the first entry").</summary>
/// <remarks>A distinct type so that an index can never be passed where a <see cref="Term"/> is expected.</remarks>
/// <param name="Value">The raw index.</param>
public readonly record struct LogIndex(long Value) : IComparable<LogIndex>
{
    /// <inheritdoc />
    public int CompareTo(LogIndex other) => Value.CompareTo(other.Value);

    /// <summary>Compares two indexes.</summary>
    public static bool operator <(LogIndex left, LogIndex right) => left.Value < right.Value;

    /// <summary>Compares two indexes.</summary>
    public static bool operator >(LogIndex left, LogIndex right) => left.Value > right.Value;

    /// <summary>Compares two indexes.</summary>
    public static bool operator <=(LogIndex left, LogIndex right) => left.Value <= right.Value;

    /// <summary>Compares two indexes.</summary>
    public static bool operator >=(LogIndex left, LogIndex right) => left.Value >= right.Value;

    /// <inheritdoc />
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
