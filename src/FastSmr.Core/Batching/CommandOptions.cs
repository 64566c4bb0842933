namespace FastSmr.Core.Batching;

/// <summary>Per-command flags carried in the command record.</summary>
[Flags]
public enum CommandOptions : uint
{
    /// <summary>No flags.</summary>
    None = 0,

    /// <summary>
    /// The client declared the command idempotent: applying it twice has the effect of applying it once, so it may be
    /// retried after an unknown outcome.
    /// </summary>
    Idempotent = 1,
}
