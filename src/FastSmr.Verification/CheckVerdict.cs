namespace FastSmr.Verification;

/// <summary>The outcome of a linearizability check.</summary>
public enum CheckVerdict
{
    /// <summary>Every key's sub-history has a linearization.</summary>
    Linearizable,

    /// <summary>At least one key's sub-history has none.</summary>
    NotLinearizable,

    /// <summary>The time budget ran out before every key was decided. Never a pass.</summary>
    Inconclusive,
}
