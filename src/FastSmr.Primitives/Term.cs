using System.Globalization;

namespace FastSmr;

/// <summary>A Raft term (election epoch). 0 is the term before any election.</summary>
/// <remarks>A distinct type so that a term can never be passed where a <see cref="LogIndex"/> is expected.</remarks>
/// <param name="Value">The raw term.</param>
public readonly record struct Term(long Value) : IComparable<Term>
{
    /// <summary>The term before any election.</summary>
    public static Term Zero => default;

    /// <summary>The term after this one (a candidate's).</summary>
    public Term Next => new(checked(Value + 1));

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
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}
