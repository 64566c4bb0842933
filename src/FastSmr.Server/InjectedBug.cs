namespace FastSmr.Server;

/// <summary>Test-only faults a replica can be told to inject, so the chaos harness can prove it catches them.</summary>
internal enum InjectedBug
{
    /// <summary>Nothing injected (always, outside the harness's self-test).</summary>
    None,

    /// <summary>Every fifth Submit is answered Ok without being appended.</summary>
    AckWithoutAppend,

    /// <summary>Linearizable reads are served from local state without a read barrier, on any replica.</summary>
    StaleRead,
}
