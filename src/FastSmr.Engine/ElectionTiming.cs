namespace FastSmr.Engine;

/// <summary>
/// How long a follower waits without hearing from a leader before it campaigns: a timeout drawn at random from
/// [<see cref="LowerMs"/>, <see cref="UpperMs"/>). Every back-end takes this one shape; each derives its heartbeat from
/// <see cref="LowerMs"/>, and the native back-end's lease is <see cref="LowerMs"/> × (1 − ρ).
/// </summary>
/// <param name="LowerMs">The lower bound in milliseconds (at least 10).</param>
/// <param name="UpperMs">The upper bound in milliseconds (above the lower one). The native core draws from [lower, 2 × lower).</param>
public sealed record ElectionTiming(int LowerMs = 300, int UpperMs = 600)
{
    /// <summary>Throws with the reason when the bounds cannot work.</summary>
    public void Validate()
    {
        // 20 ms is four ticks of the native back-end's 5 ms ticker: anything shorter cannot be timed.
        OptionRules.Range("LowerElectionTimeoutMs", LowerMs, 20, 60_000);
        OptionRules.Range("UpperElectionTimeoutMs", UpperMs, LowerMs + 1L, 120_000);
    }
}
