using FastSmr.Core;

namespace FastSmr.Engine;

/// <summary>What a back-end calls: apply committed entries, learn about leadership, take and install snapshots.</summary>
/// <remarks>
/// Ordering rule: <see cref="ApplyAsync"/> is called once per committed entry in strictly increasing index order and
/// never concurrently with itself, <see cref="WriteSnapshot"/> or <see cref="RestoreSnapshot"/>.
/// </remarks>
public interface IReplicationHost
{
    /// <summary>Applies one committed entry. <paramref name="entry"/>'s bytes are valid only during the call.</summary>
    ValueTask ApplyAsync(CommittedEntry entry, CancellationToken token);

    /// <summary>The leadership view changed (new term, new leader, or no leader).</summary>
    void OnLeadershipChanged(LeadershipInfo leadership);

    /// <summary>Writes the state as of the last applied entry.</summary>
    /// <returns>The index and term of the last applied entry, which the snapshot covers.</returns>
    (LogIndex Index, Term Term) WriteSnapshot(Stream destination);

    /// <summary>Replaces the state with a snapshot that covers the log up to <paramref name="index"/>.</summary>
    void RestoreSnapshot(Stream source, LogIndex index, Term term);

    /// <summary>
    /// Checks, without touching the state, that a snapshot received from a peer can be restored: its header belongs to
    /// this cluster and, when the host can make a scratch state machine, the whole state restores into one. Throws
    /// <see cref="InvalidDataException"/> when it cannot; a back-end then deletes the snapshot instead of installing
    /// it (an install that fails would stop the replica, and again on every restart). May run on any thread,
    /// concurrently with the other calls.
    /// </summary>
    void ValidateSnapshot(Stream source);

    /// <summary>The index of the last entry applied to the state machine.</summary>
    LogIndex AppliedIndex { get; }
}
