using FastSmr.Raft;

namespace FastSmr.Simulation;

/// <summary>What every step is checked against: applying, log matching, leaders, leases, liveness.</summary>
internal sealed partial class Simulation
{
    private void Apply(Replica replica, Entry entry)
    {
        if (entry.Index != replica.Applied + 1)
        {
            Fail($"replica {replica.Id} applied entry {entry.Index} after {replica.Applied}");
            return;
        }

        replica.Applied = entry.Index;
        var data = DataOf(entry);
        if (entry.Index.Value < committed.Count)
        {
            var known = committed[(int)entry.Index.Value];
            if (known.Term != entry.Term || known.Data != data)
            {
                Fail($"SAFETY: replica {replica.Id} applied entry {entry.Index} term {entry.Term} but term {known.Term} was committed there (a committed entry changed, or replicas apply different sequences)");
            }

            return;
        }

        committed.Add((entry.Term, data));
        configChanges += entry.Type == EntryKind.Config ? 1 : 0;
        Record("commit", replica.Id, entry.Index.Value, entry.Term.Value);
        if (proposalsByData.TryGetValue(data, out var proposal) && entry.Type == EntryKind.Normal)
        {
            if (proposal.Index != entry.Index || proposal.Term != entry.Term)
            {
                Fail($"SAFETY: proposal {data} was appended at {proposal.Index} term {proposal.Term} but committed at {entry.Index} term {entry.Term} (re-proposed?)");
                return;
            }

            proposal.Committed = true;
            if (replica.Id == proposal.Replica && replica.Node?.Role == Role.Leader)
            {
                proposal.Acknowledged = true; // the leader that took it now tells its client: committed
            }
        }

        // A higher-term entry committed at or before a pending proposal's index means it can never commit (Log Matching).
        foreach (var p in proposals)
        {
            if (!p.Committed && !p.Dropped && p.Index >= entry.Index && entry.Term > p.Term)
            {
                p.Dropped = true;
            }

            if (!p.Committed && !p.Dropped && p.Index == entry.Index && (entry.Term != p.Term || data != p.Data))
            {
                p.Dropped = true;
            }
        }
    }

    private static ulong DataOf(Entry entry) =>
        entry.Data.Length >= 8 ? BitConverter.ToUInt64(entry.Data.Span) : (ulong)entry.Type;

    private void NoteEntry(Replica replica, Entry entry)
    {
        // Log Matching, checked entry by entry: the same (index, term) anywhere has the same data and the same previous term.
        var position = (int)(entry.Index - 1 - replica.SnapshotIndex); // of the previous entry, 1-based after the snapshot
        var prevTerm = entry.Index.Value == 1 ? Term.Zero
            : position == 0 ? replica.SnapshotTerm
            : position > 0 && position <= replica.Written.Count ? replica.Written[position - 1].Term
            : replica.Node?.TermAt(entry.Index - 1) ?? new Term(-1);
        var data = DataOf(entry);
        if (entriesSeen.TryGetValue((entry.Index, entry.Term), out var seen))
        {
            if (seen.Data != data || seen.PrevTerm != prevTerm)
            {
                Fail($"SAFETY: log matching broken at index {entry.Index} term {entry.Term} on replica {replica.Id}");
            }
        }
        else
        {
            entriesSeen[(entry.Index, entry.Term)] = (data, prevTerm);
        }
    }

    private void CheckInvariants()
    {
        foreach (var replica in replicas)
        {
            var node = replica.Node;
            if (node is null)
            {
                continue;
            }

            if (node.Role == Role.Leader)
            {
                if (leaderOfTerm.TryGetValue(node.Term, out var other) && other != replica.Id)
                {
                    Fail($"SAFETY: two leaders in term {node.Term}: {other} and {replica.Id}");
                    return;
                }

                if (!replica.WasLeader)
                {
                    leaderOfTerm[node.Term] = replica.Id;
                    elections++;
                    Record("leader", replica.Id, node.Term.Value, 0);
                    if (crashNewLeaderFaults > 0)
                    {
                        // A leader that dies within milliseconds of winning: its first appends reach some replicas only.
                        // Half the time within a millisecond: before its first appends arrive anywhere.
                        Schedule(now + rng.Between(0, rng.Chance(0.5) ? 1_000 : 20_000), new SimEvent(EventKind.Crash, replica.Id, Incarnation: replica.Incarnation));
                    }

                    // Leader Completeness: every committed entry is in the new leader's log.
                    for (var i = (int)Math.Max(1, node.SnapshotIndex.Value); i < committed.Count; i++)
                    {
                        if (node.TermAt(new LogIndex(i)) != committed[i].Term)
                        {
                            Fail($"SAFETY: leader {replica.Id} of term {node.Term} lacks committed entry {i} (term {committed[i].Term}; it has {node.TermAt(new LogIndex(i))})");
                            return;
                        }
                    }
                }
            }

            replica.WasLeader = node.Role == Role.Leader;
        }

        // The lease: while a leader's lease holds on its own clock, nobody leads a later term.
        foreach (var holder in replicas)
        {
            var node = holder.Node;
            if (node?.Role != Role.Leader || node.LeaseUntil <= holder.LocalNow(now))
            {
                continue;
            }

            foreach (var other in replicas)
            {
                if (other.Node?.Role == Role.Leader && other.Node.Term > node.Term)
                {
                    Fail($"SAFETY: replica {holder.Id} holds a lease of term {node.Term} (until {node.LeaseUntil}, its clock reads {holder.LocalNow(now)}, transfer target {node.TransferTarget}) while replica {other.Id} leads term {other.Node.Term}");
                    return;
                }
            }
        }
    }

    private void CheckLiveness()
    {
        var leaders = replicas.Where(r => r.Node?.Role == Role.Leader).ToList();
        if (leaders.Count == 0)
        {
            Fail($"LIVENESS: no leader {settings.LivenessBoundUs / 1000} ms after the faults stopped");
            return;
        }

        // An acknowledged proposal is never lost: what its leader told the client is what stayed committed.
        foreach (var p in proposals.Where(p => p.Acknowledged))
        {
            if (p.Index.Value >= committed.Count || committed[(int)p.Index.Value] != (p.Term, p.Data))
            {
                Fail($"SAFETY: proposal at {p.Index} term {p.Term} was acknowledged but is not what is committed there");
                return;
            }
        }

        var pending = proposals.Where(p => !p.Committed && !p.Dropped).ToList();
        if (pending.Count > 0)
        {
            Fail($"LIVENESS: {pending.Count} proposals neither committed nor dropped {settings.LivenessBoundUs / 1000} ms after the faults stopped (first: index {pending[0].Index} term {pending[0].Term})");
        }
    }
}
