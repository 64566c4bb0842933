using FastSmr.Core;
using FastSmr.Log;
using FastSmr.Raft;

namespace FastSmr.Native;

/// <summary>
/// A replica's storage on the file system: FastSmr.Log's segmented log (hard state in its metadata file) under
/// <c>log/</c>, snapshot files under <c>snapshots/</c>, and the boot id, all in one data directory.
/// </summary>
public sealed class DiskStorage : IReplicaStorage
{
    private readonly SegmentedLog log;
    private readonly string bootIdPath;

    private DiskStorage(string root, SegmentedLog log, bool created)
    {
        this.log = log;
        Created = created;
        SnapshotDirectory = Path.Combine(root, "snapshots");
        bootIdPath = Path.Combine(root, "boot-id");
    }

    /// <summary>Where snapshots live (and where received ones are staged).</summary>
    public string SnapshotDirectory { get; }

    /// <summary>Opens (or creates) the storage in <paramref name="root"/>; leftovers of an interrupted snapshot write go.</summary>
    public static DiskStorage Open(string root, LogOptions logOptions)
    {
        root = Path.GetFullPath(root);
        Directory.CreateDirectory(root);
        var snapshots = Path.Combine(root, "snapshots");
        Directory.CreateDirectory(snapshots);
        foreach (var leftover in Directory.EnumerateFiles(snapshots, "*.tmp"))
        {
            SnapshotFile.TryDelete(leftover);
        }

        // The log's metadata file is written (durably) when the log is created, before anything can be acknowledged.
        var logDirectory = Path.Combine(root, "log");
        var created = !File.Exists(Path.Combine(logDirectory, "metadata"));
        return new DiskStorage(root, SegmentedLog.Open(logDirectory, logOptions), created);
    }

    /// <inheritdoc />
    public bool Created { get; }

    /// <inheritdoc />
    public LogIndex FirstIndex => log.FirstIndex;

    /// <inheritdoc />
    public LogIndex LastIndex => log.LastIndex;

    /// <inheritdoc />
    public Term LastTerm => log.LastTerm;

    /// <inheritdoc />
    public LogIndex DurableIndex => log.DurableIndex;

    /// <inheritdoc />
    public LogMetadataState Metadata => log.Metadata;

    /// <inheritdoc />
    public LogIndex Append(Term term, ReadOnlySpan<byte> payload, EntryKind kind) => log.Append(term, payload, ToRecordType(kind));

    /// <inheritdoc />
    public void Submit() => log.Submit();

    /// <inheritdoc />
    public void Flush(LogIndex upTo) => log.Flush(upTo);

    /// <inheritdoc />
    public void TruncateSuffix(LogIndex fromIndex) => log.TruncateSuffix(fromIndex);

    /// <inheritdoc />
    public void CompactPrefix(LogIndex upToIndex) => log.CompactPrefix(upToIndex);

    /// <inheritdoc />
    public void Reset(LogIndex index, Term term) => log.Reset(index, term);

    /// <inheritdoc />
    public void SaveState(Term term, ReplicaId votedFor, LogIndex commitIndex) => log.SaveState(term, votedFor, commitIndex);

    /// <inheritdoc />
    public Term TermAt(LogIndex index) => log.TermAt(index);

    /// <inheritdoc />
    public void ReadEntries(LogIndex fromIndex, LogIndex toIndex, List<Entry> into)
    {
        ArgumentNullException.ThrowIfNull(into);
        foreach (var record in log.Read(fromIndex, toIndex))
        {
            into.Add(new Entry(record.Index, record.Term, ToEntryKind(record.Type), record.Payload.ToArray()));
        }
    }

    /// <inheritdoc />
    public string? LoadBootId() => File.Exists(bootIdPath) ? File.ReadAllText(bootIdPath).Trim() : null;

    /// <inheritdoc />
    public void StoreBootId(string bootId)
    {
        var temporary = bootIdPath + ".tmp";
        File.WriteAllText(temporary, bootId);
        DurableFile.Commit(temporary, bootIdPath);
    }

    /// <inheritdoc />
    public SnapshotHeader? LatestSnapshot(Action<string, Exception> skipped) => SnapshotFile.FindLatest(SnapshotDirectory, skipped);

    /// <inheritdoc />
    public SnapshotHeader WriteSnapshot(ClusterConfig config, Func<Stream, (long Index, long Term)> writeState) =>
        SnapshotFile.Write(SnapshotDirectory, config, writeState);

    /// <inheritdoc />
    public Stream OpenSnapshotState(SnapshotHeader snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        var stream = new FileStream(snapshot.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        stream.Position = snapshot.StateOffset;
        return stream;
    }

    /// <inheritdoc />
    public SnapshotHeader CommitStagedSnapshot(SnapshotHeader staged)
    {
        ArgumentNullException.ThrowIfNull(staged);
        var path = SnapshotFile.PathFor(SnapshotDirectory, staged.Index);
        DurableFile.Commit(staged.Path, path);
        return staged with { Path = path };
    }

    /// <inheritdoc />
    public void DeleteSnapshotsBefore(long keepFrom) => SnapshotFile.DeleteOlder(SnapshotDirectory, keepFrom);

    /// <inheritdoc />
    public void DeleteSnapshot(SnapshotHeader snapshot) =>
        SnapshotFile.TryDelete(snapshot?.Path ?? throw new ArgumentNullException(nameof(snapshot)));

    /// <inheritdoc />
    public void Dispose() => log.Dispose();

    private static EntryKind ToEntryKind(LogRecordType type) =>
        type switch
        {
            LogRecordType.NoOp => EntryKind.NoOp,
            LogRecordType.Config => EntryKind.Config,
            _ => EntryKind.Normal,
        };

    private static LogRecordType ToRecordType(EntryKind kind) =>
        kind switch
        {
            EntryKind.NoOp => LogRecordType.NoOp,
            EntryKind.Config => LogRecordType.Config,
            _ => LogRecordType.Entry,
        };
}
