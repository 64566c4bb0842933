using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;

namespace FastSmr.Native;

// Snapshots: staged ones received from the leader, installing them into the core, and compacting the log behind a new one.
public sealed partial class NativeBackend
{
    private void Compact(RaftNode n, SnapshotHeader snapshot)
    {
        var index = new LogIndex(snapshot.Index);
        if (index <= n.SnapshotIndex)
        {
            return; // a leader's snapshot was installed meanwhile
        }

        n.Compact(index);
        if (options.Durability == DurabilityMode.Memory)
        {
            log!.Flush(index); // only durable entries are compacted away
        }

        log!.CompactPrefix(index);
        currentSnapshot = snapshot;
        SnapshotFile.DeleteOlder(snapshotDirectory, snapshot.Index);
        NativeLog.SnapshotTaken(logger, options.ReplicaId, snapshot.Index);
    }

    private void InstallSnapshot(SnapshotInfo snapshot)
    {
        if (!stagedSnapshots.Remove(snapshot.Index.Value, out var staged))
        {
            throw new InvalidOperationException("the core installs snapshot " + snapshot.Index + " but no file was received for it");
        }

        // Verified on receipt (lengths, CRC); renamed into place durably, then the log is reset to it.
        var path = SnapshotFile.PathFor(snapshotDirectory, snapshot.Index.Value);
        FastSmr.Log.DurableFile.Commit(staged.Path, path);
        var header = staged with { Path = path };
        log!.Reset(snapshot.Index, snapshot.Term);
        currentSnapshot = header;
        DropStagedSnapshots(snapshot.Index.Value);

        // Older snapshot files are deleted by the apply loop once it has restored this one (a queued restore still needs its file).
        applyQueue.Enqueue(new ApplyItem(default, header));
        NativeLog.SnapshotInstalled(logger, options.ReplicaId, snapshot.Index.Value);
    }

    /// <summary>Staged snapshots the core can no longer install (at or below what is committed here) leave the disk.</summary>
    private void DropStagedSnapshots(long upTo)
    {
        if (stagedSnapshots.Count == 0)
        {
            return; // the common case, allocation-free (no closure, no list)
        }

        List<long>? dropped = null;
        foreach (var (index, other) in stagedSnapshots)
        {
            if (index <= upTo)
            {
                (dropped ??= []).Add(index);
                SnapshotFile.TryDelete(other.Path);
            }
        }

        dropped?.ForEach(index => stagedSnapshots.Remove(index));
    }

    private bool OnSnapshotReceived(Message message, SnapshotHeader staged)
    {
        if (stopRequested || !CanBeRestored(message, staged))
        {
            return false; // the transport deletes the staged file
        }

        inbound.Enqueue(new Inbound(message, NowUs(), staged));
        Kick();
        return true; // the thread driving the core owns the staged file now
    }

    /// <summary>
    /// Whether a received snapshot (its file already checked: lengths and CRC) restores: checked on the receiving
    /// connection's thread, before the core hears of it, so that a snapshot that cannot be installed never replaces
    /// anything, neither now nor at a restart.
    /// </summary>
    private bool CanBeRestored(Message message, SnapshotHeader staged)
    {
        try
        {
            using var file = new FileStream(staged.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            file.Position = staged.StateOffset;
            host!.ValidateSnapshot(file);
            return true;
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            Interlocked.Increment(ref snapshotsRefused);
            NativeLog.SnapshotRefused(logger, options.ReplicaId, message.Index.Value, message.From, e.Message);
            return false;
        }
    }
}
