namespace FastSmr.Core.Protocol;

/// <summary>How fresh a read must be.</summary>
public enum ReadConsistency : byte
{
    /// <summary>
    /// Linearizable: served by the leader after a read barrier (the leader confirms it still leads and waits until
    /// everything committed before the read is applied).
    /// </summary>
    Linearizable = 0,

    /// <summary>Served from this replica's applied state without coordination; may be stale.</summary>
    Local = 1,
}
