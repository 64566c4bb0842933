using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;

namespace FastSmr.Native;

// Snapshots: staged ones received from the leader, installing them into the core, and compacting the log behind a new one.
public sealed partial class NativeReplica
{
    private void Compact(RaftNode n, SnapshotHeader snapshot)
    {
        var index = new LogIndex(snapshot.Index);
        if (index <= n.SnapshotIndex)
        {
            if (currentSnapshot is { } current && current.Index == snapshot.Index)
            {
                currentSnapshot = snapshot; // taken again at the same index, in place of a damaged file
            }

            return; // otherwise a leader's snapshot was installed meanwhile
        }

        n.Compact(index);
        if (options.Durability == DurabilityMode.Memory)
        {
            storage.Flush(index); // only durable entries are compacted away
        }

        storage.CompactPrefix(index);
        currentSnapshot = snapshot;
        storage.DeleteSnapshotsBefore(snapshot.Index);
        NativeLog.SnapshotTaken(logger, options.ReplicaId, snapshot.Index);
    }

    /// <summary>
    /// The bus found snapshot <paramref name="index"/> damaged on this replica's disk before sending it (any thread): the
    /// apply loop takes a new snapshot at its applied index, which replaces it.
    /// </summary>
    public void SnapshotDamaged(long index)
    {
        if (!stopRequested)
        {
            applyQueue.Enqueue(new ApplyItem(default, null, Retake: true));
            KickApply();
        }
    }

    private void InstallSnapshot(SnapshotInfo snapshot)
    {
        if (!stagedSnapshots.Remove(snapshot.Index.Value, out var staged))
        {
            throw new InvalidOperationException("the core installs snapshot " + snapshot.Index + " but no file was received for it");
        }

        // Verified on receipt (lengths, CRC); renamed into place durably, then the log is reset to it.
        var header = storage.CommitStagedSnapshot(staged);
        storage.Reset(snapshot.Index, snapshot.Term);
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
                storage.DeleteSnapshot(other);
            }
        }

        dropped?.ForEach(index => stagedSnapshots.Remove(index));
    }

    /// <summary>
    /// A snapshot arrived from a leader, staged in this replica's storage and checked (lengths, CRC): queued for the core
    /// if it restores. False: the caller deletes the staged snapshot; true: the replica owns it from now on.
    /// </summary>
    public bool ReceiveSnapshot(Message message, SnapshotHeader staged)
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
            using var file = storage.OpenSnapshotState(staged);
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
