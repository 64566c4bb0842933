namespace FastSmr.Engine;

/// <summary>When an entry counts as acknowledged. Every figure names its mode; back-ends are compared only in the same mode.</summary>
public enum DurabilityMode
{
    /// <summary>Acknowledged once fdatasync'd (flushed) on a majority. The default.</summary>
    Durable,

    /// <summary>
    /// Acknowledged once a majority holds it in memory (the page cache): survives process crashes of a minority, not a
    /// power loss of the majority.
    /// </summary>
    Memory,
}
