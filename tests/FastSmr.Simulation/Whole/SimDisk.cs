using System.Globalization;
using FastSmr.Core;
using FastSmr.Log;
using FastSmr.Native;
using FastSmr.Raft;

namespace FastSmr.Simulation;

/// <summary>
/// A replica's disk in memory, kept across the crashes of its processes, with the contracts of
/// <see cref="DiskStorage"/>: appended entries are durable only once flushed; hard state, truncations, compactions and
/// snapshots are durable when their call returns. Faults: a crash keeps a random prefix of the unsynced entries (lost
/// and torn writes: a torn record fails its checksum and is cut at recovery, as FastSmr.Log does), a flush can fail
/// (EIO), an append can find the disk full (ENOSPC); each makes the call throw, and the replica stops.
/// </summary>
public sealed class SimDisk
{
    private readonly List<SimRecord> records = []; // records[i] is index compacted + 1 + i
    private readonly Dictionary<string, byte[]> snapshots = new(StringComparer.Ordinal);
    private readonly Dictionary<string, byte[]> staged = new(StringComparer.Ordinal);
    private LogMetadataState metadata;
    private long durable; // the highest durable index
    private string? bootId;
    private int stagedCounter;
    private bool initialized; // opened before (and not wiped since)

    /// <summary>Appends fail with ENOSPC while this is set.</summary>
    public bool Full { get; set; }

    /// <summary>The next flush fails with EIO (then this clears).</summary>
    public bool FailNextFlush { get; set; }

    /// <summary>The chance that the machine loses power during a flush, before the flushed entries are durable.</summary>
    public double PowerLossChance { get; set; }

    /// <summary>Called when the machine loses power during a flush; it must crash the process (power loss).</summary>
    public Action? OnPowerLoss { get; set; }

    /// <summary>The random source of power losses during flushes.</summary>
    public SimRandom? Random { get; set; }

    /// <summary>The index of the last entry (durable or not).</summary>
    public long LastIndex => metadata.CompactedIndex.Value + records.Count;

    /// <summary>The highest index that survives a crash.</summary>
    public long DurableIndex => durable;

    /// <summary>The durable hard state.</summary>
    public LogMetadataState Metadata => metadata;

    /// <summary>
    /// The crash of the process using the disk. After a power loss (<paramref name="powerLoss"/>), of the entries
    /// appended since the last flush a random prefix survives (possibly none, possibly all: the kernel may have written
    /// some back on its own); after kill -9 they all do (the page cache survives). Staged snapshots, never handed to a
    /// replica, are gone either way, and the process's view of the disk is closed.
    /// </summary>
    public void Crash(SimRandom random, bool powerLoss)
    {
        ArgumentNullException.ThrowIfNull(random);
        current?.Dispose();
        current = null;
        var unsynced = LastIndex - durable;
        if (powerLoss && unsynced > 0)
        {
            var kept = random.Chance(0.5) ? 0 : random.Between(0, unsynced + 1);
            records.RemoveRange(records.Count - (int)(unsynced - kept), (int)(unsynced - kept));
        }

        durable = LastIndex;
        staged.Clear();
        Full = false;
        FailNextFlush = false;
    }

    /// <summary>
    /// Opens the disk for a new process: the storage the replica sees until it crashes. Recovery reads every record, as
    /// FastSmr.Log does: a damaged durable record is reported, never truncated or served.
    /// </summary>
    /// <exception cref="InvalidDataException">A durable record is damaged: the replica cannot start on this disk.</exception>
    public IReplicaStorage Open()
    {
        var compacted = metadata.CompactedIndex.Value;
        for (var i = 0; i < records.Count; i++)
        {
            if (records[i].Damaged)
            {
                throw new InvalidDataException("log record " + (compacted + 1 + i) + " fails its checksum (simulated corruption)");
            }
        }

        var created = !initialized;
        initialized = true;
        return current = new Storage(this, created);
    }

    /// <summary>
    /// Damages one durable log record (a bit flip, or a write that landed elsewhere): found at the next recovery. False
    /// when the disk holds none.
    /// </summary>
    public bool DamageRecord(SimRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var durableRecords = (int)(durable - metadata.CompactedIndex.Value);
        if (durableRecords <= 0)
        {
            return false;
        }

        var at = random.Below(durableRecords);
        records[at] = records[at] with { Damaged = true };
        return true;
    }

    /// <summary>Damages the newest snapshot file (one byte of its state flipped): found when it is next verified.</summary>
    public bool DamageSnapshot(SimRandom random)
    {
        ArgumentNullException.ThrowIfNull(random);
        var newest = snapshots.Keys.Order(StringComparer.Ordinal).LastOrDefault();
        if (newest is null || snapshots[newest].Length == 0)
        {
            return false;
        }

        var bytes = (byte[])snapshots[newest].Clone();
        bytes[random.Below(bytes.Length)] ^= (byte)(1 + random.Below(255));
        snapshots[newest] = bytes;
        return true;
    }

    /// <summary>The operator's repair of a disk that cannot be recovered: everything is gone, the replica starts empty.</summary>
    public void Wipe()
    {
        current?.Dispose();
        current = null;
        records.Clear();
        snapshots.Clear();
        staged.Clear();
        metadata = default;
        durable = 0;
        bootId = null;
        initialized = false;
    }

    private Storage? current;

    /// <summary>Stages a snapshot file received from a leader (not durable; gone at a crash); returns it checked.</summary>
    /// <exception cref="InvalidDataException">The bytes are not a whole, intact snapshot file.</exception>
    public SnapshotHeader Stage(byte[] file)
    {
        var name = "incoming-" + (++stagedCounter).ToString(CultureInfo.InvariantCulture);
        using var stream = new MemoryStream(file, writable: false);
        var header = SnapshotFile.Verify(stream, name);
        staged[name] = file;
        return header;
    }

    /// <summary>Deletes a staged snapshot nobody took.</summary>
    public void Unstage(SnapshotHeader snapshot) => staged.Remove(snapshot?.Path ?? "");

    /// <summary>The bytes of snapshot file <paramref name="name"/> (to send it), or null if it is gone.</summary>
    public byte[]? SnapshotBytes(string name) => snapshots.TryGetValue(name, out var bytes) ? bytes : null;

    private static string NameFor(long index) => index.ToString("D20", CultureInfo.InvariantCulture) + ".snap";

    private readonly record struct SimRecord(long Term, EntryKind Kind, byte[] Payload, bool Damaged = false);

    /// <summary>One process's view of the disk; every call after the process is gone is refused.</summary>
    private sealed class Storage(SimDisk disk, bool created) : IReplicaStorage
    {
        private bool closed;

        public bool Created => created;

        public LogIndex FirstIndex => new(disk.metadata.CompactedIndex.Value + 1);

        public LogIndex LastIndex => new(disk.LastIndex);

        public Term LastTerm => disk.records.Count > 0 ? new Term(disk.records[^1].Term) : disk.metadata.CompactedTerm;

        public LogIndex DurableIndex => new(disk.durable);

        public LogMetadataState Metadata => disk.metadata;

        public LogIndex Append(Term term, ReadOnlySpan<byte> payload, EntryKind kind)
        {
            Check();
            if (disk.Full)
            {
                throw new IOException("No space left on device (simulated)", 28);
            }

            disk.records.Add(new SimRecord(term.Value, kind, payload.ToArray()));
            return LastIndex;
        }

        public void Submit() => Check();

        public void Flush(LogIndex upTo)
        {
            Check();
            if (disk.PowerLossChance > 0 && disk.Random!.Chance(disk.PowerLossChance) && disk.OnPowerLoss is { } powerLoss)
            {
                powerLoss(); // crashes the process: this view is closed, and the unsynced entries are lost or torn
                throw new SimulatedCrashException("power lost during fdatasync");
            }

            if (disk.FailNextFlush)
            {
                disk.FailNextFlush = false;
                throw new IOException("Input/output error (simulated fdatasync failure)", 5);
            }

            disk.durable = Math.Max(disk.durable, Math.Min(upTo.Value, disk.LastIndex));
        }

        public void TruncateSuffix(LogIndex fromIndex)
        {
            Check();
            var from = fromIndex.Value;
            if (from <= disk.metadata.CommitIndex.Value)
            {
                throw new InvalidOperationException("truncating committed entries from " + from + " (commit " + disk.metadata.CommitIndex + ")");
            }

            var keep = (int)Math.Max(0, from - 1 - disk.metadata.CompactedIndex.Value);
            if (keep < disk.records.Count)
            {
                disk.records.RemoveRange(keep, disk.records.Count - keep);
            }

            disk.durable = Math.Min(disk.durable, disk.LastIndex);
        }

        public void CompactPrefix(LogIndex upToIndex)
        {
            Check();
            var upTo = upToIndex.Value;
            var compacted = disk.metadata.CompactedIndex.Value;
            if (upTo <= compacted)
            {
                return;
            }

            if (upTo > disk.durable)
            {
                throw new InvalidOperationException("compacting past the durable index " + disk.durable);
            }

            var term = TermAt(upToIndex);
            disk.records.RemoveRange(0, (int)(upTo - compacted));
            disk.metadata = disk.metadata with { CompactedIndex = upToIndex, CompactedTerm = term };
        }

        public void Reset(LogIndex index, Term term)
        {
            Check();
            disk.records.Clear();
            disk.metadata = disk.metadata with { CompactedIndex = index, CompactedTerm = term, CommitIndex = index };
            disk.durable = index.Value;
        }

        public void SaveState(Term term, ReplicaId votedFor, LogIndex commitIndex)
        {
            Check();
            var current = disk.metadata;
            if (term < current.Term || commitIndex < current.CommitIndex)
            {
                throw new ArgumentOutOfRangeException(nameof(term), "term and commit index never go down");
            }

            if (commitIndex.Value > disk.durable)
            {
                throw new ArgumentOutOfRangeException(nameof(commitIndex), "the commit index cannot pass the durable index " + disk.durable);
            }

            disk.metadata = current with { Term = term, VotedFor = votedFor, CommitIndex = commitIndex };
        }

        public Term TermAt(LogIndex index)
        {
            Check();
            var compacted = disk.metadata.CompactedIndex.Value;
            if (index.Value == compacted)
            {
                return disk.metadata.CompactedTerm;
            }

            if (index.Value <= compacted || index.Value > disk.LastIndex)
            {
                throw new ArgumentOutOfRangeException(nameof(index), index.Value, "the log holds (" + compacted + ", " + disk.LastIndex + "]");
            }

            return new Term(disk.records[(int)(index.Value - compacted - 1)].Term);
        }

        public void ReadEntries(LogIndex fromIndex, LogIndex toIndex, List<Entry> into)
        {
            Check();
            ArgumentNullException.ThrowIfNull(into);
            var compacted = disk.metadata.CompactedIndex.Value;
            for (var i = fromIndex.Value; i <= toIndex.Value; i++)
            {
                var record = disk.records[(int)(i - compacted - 1)];
                into.Add(new Entry(new LogIndex(i), new Term(record.Term), record.Kind, record.Payload.ToArray()));
            }
        }

        public string? LoadBootId() => disk.bootId;

        public void StoreBootId(string bootId) => disk.bootId = bootId;

        public SnapshotHeader? LatestSnapshot(Action<string, Exception> skipped)
        {
            Check();
            foreach (var name in disk.snapshots.Keys.Order(StringComparer.Ordinal).Reverse())
            {
                try
                {
                    using var stream = new MemoryStream(disk.snapshots[name], writable: false);
                    return SnapshotFile.Verify(stream, name);
                }
                catch (InvalidDataException e)
                {
                    skipped(name, e);
                }
            }

            return null;
        }

        public SnapshotHeader WriteSnapshot(ClusterConfig config, Func<Stream, (long Index, long Term)> writeState)
        {
            Check();
            using var stream = new MemoryStream();
            var header = SnapshotFile.WriteTo(stream, "writing", config, writeState);
            var name = NameFor(header.Index);
            disk.snapshots[name] = stream.ToArray();
            return header with { Path = name };
        }

        public Stream OpenSnapshotState(SnapshotHeader snapshot)
        {
            Check();
            ArgumentNullException.ThrowIfNull(snapshot);
            var bytes = disk.snapshots.TryGetValue(snapshot.Path, out var durableBytes) ? durableBytes
                : disk.staged.TryGetValue(snapshot.Path, out var stagedBytes) ? stagedBytes
                : throw new FileNotFoundException("no snapshot " + snapshot.Path);
            return new MemoryStream(bytes, (int)snapshot.StateOffset, (int)snapshot.StateLength, writable: false);
        }

        public SnapshotHeader CommitStagedSnapshot(SnapshotHeader staged)
        {
            Check();
            ArgumentNullException.ThrowIfNull(staged);
            if (!disk.staged.Remove(staged.Path, out var bytes))
            {
                throw new FileNotFoundException("no staged snapshot " + staged.Path);
            }

            var name = NameFor(staged.Index);
            disk.snapshots[name] = bytes;
            return staged with { Path = name };
        }

        public void DeleteSnapshotsBefore(long keepFrom)
        {
            Check();
            foreach (var name in disk.snapshots.Keys.ToList())
            {
                if (long.Parse(name.AsSpan(0, 20), CultureInfo.InvariantCulture) < keepFrom)
                {
                    disk.snapshots.Remove(name);
                }
            }
        }

        public void DeleteSnapshot(SnapshotHeader snapshot)
        {
            if (snapshot is not null)
            {
                disk.staged.Remove(snapshot.Path);
            }
        }

        public void Dispose() => closed = true;

        private void Check() => ObjectDisposedException.ThrowIf(closed, this);
    }
}

/// <summary>Unwinds the stack of a process that the simulation just crashed inside a storage call.</summary>
public sealed class SimulatedCrashException(string message) : Exception(message);
