using System.Globalization;

namespace FastSmr.Core.StateMachines;

/// <summary>A 128-bit digest of a state machine's state, compared across replicas at equal applied indexes.</summary>
/// <param name="High">The high 64 bits.</param>
/// <param name="Low">The low 64 bits.</param>
public readonly record struct StateDigest(ulong High, ulong Low)
{
    /// <summary>Formats the digest as 32 lowercase hex digits.</summary>
    public override string ToString() =>
        High.ToString("x16", CultureInfo.InvariantCulture) + Low.ToString("x16", CultureInfo.InvariantCulture);
}
