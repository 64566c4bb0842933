namespace FastSmr.Core;

/// <summary>A Raft term (election epoch).</summary>
/// <remarks>A distinct type so that a term can never be passed where a <see cref="LogIndex"/> is expected.</remarks>
/// <param name="Value">The raw term.</param>
public readonly record struct Term(long Value) : IComparable<Term>
{
    /// <inheritdoc />
    public int CompareTo(Term other) => Value.CompareTo(other.Value);

    /// <summary>Compares two terms.</summary>
    public static bool operator <(Term left, Term right) => left.Value < right.Value;

    /// <summary>Compares two terms.</summary>
    public static bool operator >(Term left, Term right) => left.Value > right.Value;

    /// <summary>Compares two terms.</summary>
    public static bool operator <=(Term left, Term right) => left.Value <= right.Value;

    /// <summary>Compares two terms.</summary>
    public static bool operator >=(Term left, Term right) => left.Value >= right.Value;

    /// <inheritdoc />
    public override string ToString() => Value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
