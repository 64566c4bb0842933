using FastSmr.Core;
using FastSmr.Log;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>
/// What a <see cref="NativeReplica"/> keeps on disk: its log with the hard state beside it, and its snapshots. One
/// replica's storage, used by one thread at a time (the one driving the core; the apply loop only writes snapshots).
/// Production is <see cref="DiskStorage"/> (FastSmr.Log and snapshot files); a simulator plugs in a simulated disk
/// with faults. Every call either does what it says or throws: a throw is a storage failure, and the replica stops.
/// </summary>
public interface IReplicaStorage : IDisposable
{
    /// <summary>
    /// True when this open created the storage (there was none: a new or wiped data directory); false when it reopened
    /// existing storage, however empty. Only a created one can hide lost acknowledgements (decision 98).
    /// </summary>
    bool Created { get; }

    /// <summary>The first index held (after compaction, the one after the snapshot).</summary>
    LogIndex FirstIndex { get; }

    /// <summary>The last index appended (durable or not).</summary>
    LogIndex LastIndex { get; }

    /// <summary>The term of <see cref="LastIndex"/>.</summary>
    Term LastTerm { get; }

    /// <summary>Everything up to here survives a power loss.</summary>
    LogIndex DurableIndex { get; }

    /// <summary>Term, vote, commit index and the compaction point, as last saved.</summary>
    LogMetadataState Metadata { get; }

    /// <summary>Appends one entry after <see cref="LastIndex"/>; durable only once <see cref="Flush"/> covers it.</summary>
    /// <returns>The index it was given.</returns>
    LogIndex Append(Term term, ReadOnlySpan<byte> payload, EntryKind kind);

    /// <summary>Hands what was appended to the kernel without waiting for the device (memory mode).</summary>
    void Submit();

    /// <summary>Makes every entry up to <paramref name="upTo"/> durable (fdatasync).</summary>
    void Flush(LogIndex upTo);

    /// <summary>Removes the entries from <paramref name="fromIndex"/> on; durable when it returns.</summary>
    void TruncateSuffix(LogIndex fromIndex);

    /// <summary>Drops the entries up to <paramref name="upToIndex"/>, which a durable snapshot covers.</summary>
    void CompactPrefix(LogIndex upToIndex);

    /// <summary>Empties the log so that it continues after a snapshot at (<paramref name="index"/>, <paramref name="term"/>).</summary>
    void Reset(LogIndex index, Term term);

    /// <summary>Saves term, vote and commit index durably.</summary>
    void SaveState(Term term, ReplicaId votedFor, LogIndex commitIndex);

    /// <summary>The term of the entry at <paramref name="index"/>.</summary>
    Term TermAt(LogIndex index);

    /// <summary>Adds the entries <paramref name="fromIndex"/>..<paramref name="toIndex"/> to <paramref name="into"/> (recovery).</summary>
    void ReadEntries(LogIndex fromIndex, LogIndex toIndex, List<Entry> into);

    /// <summary>The boot id stored by <see cref="StoreBootId"/>, or null (memory mode's unclean-restart rule).</summary>
    string? LoadBootId();

    /// <summary>Stores the running machine's boot id durably.</summary>
    void StoreBootId(string bootId);

    /// <summary>The newest snapshot that verifies, or null; damaged newer ones are reported through <paramref name="skipped"/>.</summary>
    SnapshotHeader? LatestSnapshot(Action<string, Exception> skipped);

    /// <summary>
    /// Writes a snapshot: <paramref name="writeState"/> streams the state and returns the index and term it covers.
    /// Durable and in place when this returns.
    /// </summary>
    SnapshotHeader WriteSnapshot(ClusterConfig config, Func<Stream, (long Index, long Term)> writeState);

    /// <summary>Opens a snapshot's state image for reading, positioned at its first byte.</summary>
    Stream OpenSnapshotState(SnapshotHeader snapshot);

    /// <summary>Moves a staged snapshot (received from a leader, verified) into place durably; returns it there.</summary>
    SnapshotHeader CommitStagedSnapshot(SnapshotHeader staged);

    /// <summary>Deletes the snapshots older than <paramref name="keepFrom"/>.</summary>
    void DeleteSnapshotsBefore(long keepFrom);

    /// <summary>Deletes one snapshot (a staged one nobody will install), if it can; never throws.</summary>
    void DeleteSnapshot(SnapshotHeader snapshot);
}
