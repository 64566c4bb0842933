namespace FastSmr.Native;

/// <summary>
/// Test-only bugs the whole-system simulator must catch (docs/architecture.md, "Testing layers": every harness proves it
/// can fail). Set through <see cref="NativeReplica.Bug"/>, internal, never by configuration.
/// </summary>
internal enum NativeBug
{
    /// <summary>None.</summary>
    None,

    /// <summary>Appended entries are reported persisted (and so acknowledged) before their fdatasync.</summary>
    AcknowledgeBeforeFsync,

    /// <summary>A new leader's lease serves reads before an entry of its own term is committed (its commit index may be stale).</summary>
    LeaseBeforeCommitIndex,

    /// <summary>Entries are applied when appended, before they are committed.</summary>
    ApplyPastCommit,

    /// <summary>The drive loop does not look for work queued during its round once it lets go of the core.</summary>
    LostWakeUp,

    /// <summary>
    /// The drive loop looks for queued work before it lets go of the core, not after: work queued by a thread that found
    /// the core taken in between is left behind. Only a second thread at the right moment shows it.
    /// </summary>
    CheckThenLetGo,
}
