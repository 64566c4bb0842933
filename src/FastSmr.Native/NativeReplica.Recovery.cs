using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using FastSmr.Core;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Log;
using FastSmr.Raft;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace FastSmr.Native;

// Recovery at start: the core rebuilt from the log and the newest snapshot, the memory-mode boot-id rule (a replica
// whose machine restarted neither votes nor campaigns until it has caught up), and the same rule for a replica that
// starts with no state at all (amnesia), lifted early only when every member is as new (a new cluster).
public sealed partial class NativeReplica
{
    /// <summary>
    /// A replica whose storage was created at this start (a new data directory, or a wiped one) cannot tell a new cluster
    /// from a running one whose entries it acknowledged before it lost them. It starts as a non-voter (decisions 87, 98).
    /// </summary>
    private void CheckFresh(RaftNode n)
    {
        if (n.Term.Value != 0 || n.LastIndex.Value != 0)
        {
            return;
        }

        fresh = true;
        if (options.Members.Count == 1 || !storage.Created)
        {
            // Alone: a majority of itself. Or its own storage reopened, empty: whatever it acknowledged would be on it,
            // so it acknowledged nothing and may vote (decision 98).
            return;
        }

        if (!rejoining)
        {
            rejoining = true;
            NativeLog.StartsEmpty(logger, options.ReplicaId);
        }
    }

    /// <summary>
    /// A peer's message connection was admitted: while this replica has no state, every member without state (itself
    /// included) means a new cluster, whose replicas may vote from the start. Safe within the failure model: if a
    /// running cluster had committed anything, a majority holds it, and at most F of them can have lost it, so some
    /// member still has state. A majority without state proved nothing (decision 102): one replica that lost its disk
    /// and one that never received anything made two of three.
    /// </summary>
    public void Greeted(int peer, bool peerFresh)
    {
        int count;
        lock (freshPeers)
        {
            if (peerFresh)
            {
                freshPeers.Add(peer);
            }
            else
            {
                freshPeers.Remove(peer);
            }

            count = freshPeers.Count + 1;
        }

        if (Volatile.Read(ref fresh) && Volatile.Read(ref rejoining) && count == options.Members.Count)
        {
            Volatile.Write(ref rejoining, false);
            NativeLog.NewCluster(logger, options.ReplicaId, count, options.Members.Count);
        }
    }

    private bool CheckBootId()
    {
        // memory mode (docs/architecture.md, "Safety rules"): after an unclean OS shutdown — the boot id stored here
        // differs from the running kernel's — what this replica acknowledged may be lost, so it must not vote or
        // campaign until it caught up. The stored id is replaced only once it has, so a restart while rejoining rejoins
        // again.
        var previous = storage.LoadBootId();
        var rebooted = options.Durability == DurabilityMode.Memory && previous is not null && previous != bootId;
        if (rebooted)
        {
            NativeLog.Rejoining(logger, options.ReplicaId);
        }
        else if (previous != bootId)
        {
            storage.StoreBootId(bootId);
        }

        return rebooted;
    }

    private RaftNode Recover(IReplicationHost replicationHost)
    {
        var snapshot = storage.LatestSnapshot((path, e) => NativeLog.SnapshotSkipped(logger, path, e.Message));
        if (snapshot is not null)
        {
            using (var stream = storage.OpenSnapshotState(snapshot))
            {
                replicationHost.RestoreSnapshot(stream, new LogIndex(snapshot.Index), new Term(snapshot.Term));
            }

            currentSnapshot = snapshot;
        }

        var meta = storage.Metadata;
        var snapshotIndex = new LogIndex(snapshot?.Index ?? 0);
        var snapshotTerm = new Term(snapshot?.Term ?? 0);
        if (meta.CompactedIndex > snapshotIndex)
        {
            throw new InvalidDataException(
                options.DataDirectory
                    + ": the log is compacted up to "
                    + meta.CompactedIndex
                    + " but the newest intact snapshot covers only "
                    + snapshotIndex
            );
        }

        if (snapshotIndex > storage.LastIndex || (snapshotIndex >= storage.FirstIndex && storage.TermAt(snapshotIndex) != snapshotTerm))
        {
            // The snapshot was installed but the log's reset did not finish: the log holds nothing the snapshot keeps.
            storage.Reset(snapshotIndex, snapshotTerm);
        }

        var entries = new List<Entry>();
        var first = LogIndex.Max(storage.FirstIndex, snapshotIndex + 1);
        if (first <= storage.LastIndex)
        {
            storage.ReadEntries(first, storage.LastIndex, entries);
        }

        var voters = options.Members.Select(m => m.Id).ToList();
        var raftOptions = new RaftOptions
        {
            Id = options.ReplicaId,
            Voters = voters,
            ElectionTimeoutMinUs = options.Election.LowerMs * 1000L,
            HeartbeatIntervalUs = options.EffectiveHeartbeatIntervalMs * 1000L,
            Seed = (ulong)options.Time.GetTimestamp() ^ ((ulong)options.ReplicaId.Value << 48),
        };
        var commit = LogIndex.Max(LogIndex.Min(meta.CommitIndex, storage.LastIndex), snapshotIndex);
        var core = new RaftNode(
            raftOptions,
            new HardState(meta.Term, meta.VotedFor, commit),
            entries,
            snapshotIndex,
            snapshotTerm,
            snapshot?.Config
        );
        core.Persisted(storage.LastIndex, storage.LastTerm); // everything on disk after recovery is durable
        lastApplied = replicationHost.AppliedIndex.Value;
        applyConfig = snapshot?.Config ?? new ClusterConfig(voters);
        lastSnapshotIndex = snapshotIndex.Value;
        return core;
    }
}
