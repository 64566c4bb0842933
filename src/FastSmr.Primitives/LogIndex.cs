using System.Globalization;

namespace FastSmr;

/// <summary>The position of an entry in the replicated log (1-based; 0 means "before the first entry").</summary>
/// <remarks>
/// A distinct type so that an index can never be passed where a <see cref="Term"/> is expected. An index moves by a count
/// of entries (<c>index + 1</c>), and two indexes differ by one (<c>last - first</c>, a <see cref="long"/>).
/// </remarks>
/// <param name="Value">The raw index.</param>
public readonly record struct LogIndex(long Value) : IComparable<LogIndex>
{
    /// <summary>The index before the first entry.</summary>
    public static LogIndex Zero => default;

    /// <summary>The index after this one.</summary>
    public LogIndex Next => new(Value + 1);

    /// <inheritdoc />
    public int CompareTo(LogIndex other) => Value.CompareTo(other.Value);

    /// <summary>The later of two indexes.</summary>
    public static LogIndex Max(LogIndex left, LogIndex right) => left.Value >= right.Value ? left : right;

    /// <summary>The earlier of two indexes.</summary>
    public static LogIndex Min(LogIndex left, LogIndex right) => left.Value <= right.Value ? left : right;

    /// <summary>The index <paramref name="count"/> entries later.</summary>
    public static LogIndex operator +(LogIndex index, long count) => new(index.Value + count);

    /// <summary>The index <paramref name="count"/> entries earlier.</summary>
    public static LogIndex operator -(LogIndex index, long count) => new(index.Value - count);

    /// <summary>How many entries lie between two indexes.</summary>
    public static long operator -(LogIndex later, LogIndex earlier) => later.Value - earlier.Value;

    /// <summary>The next index.</summary>
    public static LogIndex operator ++(LogIndex index) => new(index.Value + 1);

    /// <summary>The previous index.</summary>
    public static LogIndex operator --(LogIndex index) => new(index.Value - 1);

    /// <summary>Compares two indexes.</summary>
    public static bool operator <(LogIndex left, LogIndex right) => left.Value < right.Value;

    /// <summary>Compares two indexes.</summary>
    public static bool operator >(LogIndex left, LogIndex right) => left.Value > right.Value;

    /// <summary>Compares two indexes.</summary>
    public static bool operator <=(LogIndex left, LogIndex right) => left.Value <= right.Value;

    /// <summary>Compares two indexes.</summary>
    public static bool operator >=(LogIndex left, LogIndex right) => left.Value >= right.Value;

    /// <inheritdoc />
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
