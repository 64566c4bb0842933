using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Raft;

namespace FastSmr.Native;

// Applying what committed, in order, on the thread that holds `applying`, and taking snapshots by entries and by bytes.
public sealed partial class NativeReplica
{
    private void KickApply()
    {
        if (applyQueue.IsEmpty)
        {
            return;
        }

        if (!options.InlineDrive)
        {
            wakeApplier();
        }
        else
        {
            TryApply();
        }
    }

    /// <summary>Applies what is queued unless another thread is applying (it then sees the work).</summary>
    public void TryApply()
    {
        Point("take the apply loop");
        if (!applyQueue.IsEmpty && Interlocked.CompareExchange(ref applying, 1, 0) == 0)
        {
            ApplyAll();
        }
    }

    /// <summary>Applies everything queued, in order; the caller holds <see cref="applying"/>, which this releases.</summary>
    private void ApplyAll()
    {
        Interlocked.Increment(ref active);
        try
        {
            ApplyRounds();
        }
        finally
        {
            Interlocked.Decrement(ref active);
        }
    }

    private void ApplyRounds()
    {
        while (true)
        {
            try
            {
                while (!stopRequested && applyQueue.TryDequeue(out var item))
                {
                    ApplyOne(item);
                }
            }
#pragma warning disable CA1031 // A failing state machine stops the replica with the reason logged.
            catch (Exception e)
#pragma warning restore CA1031
            {
                Volatile.Write(ref applying, 0);
                Fail(e);
                return;
            }

            Interlocked.Exchange(ref applying, 0); // a full fence, as in DriveRounds
            Point("apply let go");
            if (stopRequested || applyQueue.IsEmpty || Interlocked.CompareExchange(ref applying, 1, 0) != 0)
            {
                return;
            }
        }
    }

    private void ApplyOne(ApplyItem item)
    {
        var replicationHost = host!;
        if (item.Restore is { } restore)
        {
            using (var stream = storage.OpenSnapshotState(restore))
            {
                replicationHost.RestoreSnapshot(stream, new LogIndex(restore.Index), new Term(restore.Term));
            }

            storage.DeleteSnapshotsBefore(restore.Index);
            lastApplied = restore.Index;
            lastSnapshotIndex = restore.Index;
            bytesSinceSnapshot = 0;
            applyConfig = restore.Config;
            return;
        }

        if (item.Retake)
        {
            TakeSnapshot(replicationHost);
            return;
        }

        var entry = item.Entry;
        if (entry.Index.Value <= lastApplied)
        {
            return;
        }

        var bytes = entry.Type == EntryKind.Normal ? entry.Data : ReadOnlyMemory<byte>.Empty;
        var applied = replicationHost.ApplyAsync(new CommittedEntry(entry.Index, entry.Term, bytes), CancellationToken.None);
        if (!applied.IsCompletedSuccessfully)
        {
            applied.AsTask().GetAwaiter().GetResult();
        }

        lastApplied = entry.Index.Value;
        bytesSinceSnapshot += entry.Data.Length;
        if (entry.Type == EntryKind.Config)
        {
            applyConfig = ClusterConfig.Decode(entry.Data.Span);
        }

        // By entries, and by bytes (SnapshotPolicy): the core keeps every entry since the last compaction in memory.
        if (options.Snapshots.IsDue(lastApplied, lastSnapshotIndex, bytesSinceSnapshot))
        {
            TakeSnapshot(replicationHost);
        }
    }

    private void TakeSnapshot(IReplicationHost replicationHost)
    {
        if (lastApplied == 0)
        {
            return; // nothing applied: no snapshot to take
        }

        var header = storage.WriteSnapshot(applyConfig, s =>
        {
            var (index, term) = replicationHost.WriteSnapshot(s);
            return (index.Value, term.Value);
        });
        lastSnapshotIndex = header.Index;
        bytesSinceSnapshot = 0;
        compactions.Enqueue(header);
        Kick();
    }
}
