using FastSmr.Raft;

namespace FastSmr.Simulation;

/// <summary>The nemesis: fault schedules, crashes at chosen moments, membership changes.</summary>
internal sealed partial class Simulation
{
    private static void NoteLeadership(Replica replica)
    {
        var node = replica.Node!;
        if (node.Role == Role.Leader && replica.LeaderTerm != node.Term)
        {
            replica.LeaderTerm = node.Term;
            replica.CommitAtElection = node.CommitIndex;
        }
    }

    /// <summary>
    /// While a "crash at first commit" fault runs, a leader dies right after it first applied a commit of its term —
    /// the instant where committing an older term's entry by counting would be exposed (thesis figure 3.7): it acted
    /// on the commit, and its own entry may not have reached a majority yet.
    /// </summary>
    private void CrashAtFirstCommit(Replica replica)
    {
        var node = replica.Node;
        if (crashAtFirstCommitFaults == 0 || node is null || node.Role != Role.Leader || replica.LeaderTerm != node.Term || node.CommitIndex <= replica.CommitAtElection)
        {
            return;
        }

        Crash(replica);
        Schedule(now + rng.Between(50_000, 1_500_000), new SimEvent(EventKind.Restart, replica.Id));
    }

    private void ScheduleFaults()
    {
        // Three independent streams of faults, so that faults overlap (an isolated leader while new leaders die, …).
        var id = 0;
        for (var stream = 0; stream < 3; stream++)
        {
            var at = rng.Between(500_000, 3_000_000);
            while (at < settings.FaultPhaseUs - 1_000_000)
            {
                id++;
                // Isolating the leader and killing leaders at their worst moments (kinds 3, 8, 10) come twice as often:
                // together they make the paper's figure-8 histories, which nothing else reaches in few seeds.
                var kind = rng.Below(16) switch { 12 => 3, 13 => 8, 14 => 10, var k => k };
                var length = rng.Between(300_000, 3_000_000);
                if (kind == 15)
                {
                    // The figure-8 script (thesis figure 3.7), built from the faults above: the leader is cut off
                    // (clients still reach it, so it grows an uncommitted tail) while whoever wins next dies at once;
                    // then it returns, wins again, and dies the moment it first commits.
                    var back = at + rng.Between(400_000, 900_000);
                    Schedule(at, new SimEvent(EventKind.FaultStart, 0, Index: ++id, Fault: 3));
                    Schedule(back, new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: 3));
                    Schedule(at + 1, new SimEvent(EventKind.FaultStart, 0, Index: ++id, Fault: 8));
                    Schedule(back, new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: 8));
                    Schedule(back + 1, new SimEvent(EventKind.FaultStart, 0, Index: ++id, Fault: 10));
                    length = back - at + rng.Between(500_000, 2_000_000);
                    Schedule(Math.Min(at + length, settings.FaultPhaseUs), new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: 10));
                    at += length + rng.Between(200_000, 3_000_000);
                    continue;
                }

                Schedule(at, new SimEvent(EventKind.FaultStart, 0, Index: id, Fault: kind));
                Schedule(Math.Min(at + length, settings.FaultPhaseUs), new SimEvent(EventKind.FaultEnd, 0, Index: id, Fault: kind));
                at += length + rng.Between(200_000, 3_000_000);
            }
        }

        Schedule(settings.FaultPhaseUs, new SimEvent(EventKind.FaultEnd, 0, Fault: -1));
    }

    private void Cut(int fault, int from, int to)
    {
        if (!cutsByFault.TryGetValue(fault, out var cuts))
        {
            cutsByFault[fault] = cuts = [];
        }

        cuts.Add((from, to));
        blocked[(from, to)] = blocked.GetValueOrDefault((from, to)) + 1;
    }

    private void StartFault(int kind, long faultId)
    {
        var fault = (int)faultId;
        faults++;
        var leader = replicas.FirstOrDefault(r => r.Node?.Role == Role.Leader);
        var victim = replicas[rng.Below(replicas.Length)];
        Record("fault", kind, leader?.Id ?? 0, victim.Id);
        switch (kind)
        {
            case 0: // crash a replica (the leader half the time), restart it at the end of the fault
            case 1:
                var target = kind == 0 && leader is not null ? leader : victim;
                if (target.Node is not null && replicas.Count(r => r.Node is null) < (replicas.Length - 1) / 2 + 1)
                {
                    Crash(target);
                    Schedule(now + rng.Between(100_000, 2_000_000), new SimEvent(EventKind.Restart, target.Id));
                }

                break;
            case 2: // symmetric partition: a random minority cut off
                var minority = replicas.OrderBy(_ => rng.Next()).Take(rng.Below(replicas.Length / 2) + 1).Select(r => r.Id).ToHashSet();
                foreach (var a in replicas)
                {
                    foreach (var b in replicas)
                    {
                        if (minority.Contains(a.Id) != minority.Contains(b.Id))
                        {
                            Cut(fault, a.Id, b.Id);
                        }
                    }
                }

                break;
            case 3: // isolate the leader
                var isolated = leader ?? victim;
                foreach (var other in replicas)
                {
                    if (other != isolated)
                    {
                        Cut(fault, isolated.Id, other.Id);
                        Cut(fault, other.Id, isolated.Id);
                    }
                }

                break;
            case 4: // one-way: one replica's messages to another are lost, not the other way
                var from = leader is not null && rng.Chance(0.5) ? leader : victim;
                var to = replicas[rng.Below(replicas.Length)];
                if (from != to)
                {
                    Cut(fault, from.Id, to.Id);
                }

                break;
            case 5: // lossy, duplicating, slow network
                lossyFaults++;
                break;
            case 6: // slow disks
                slowDiskFaults++;
                break;
            case 7: // power loss: every replica crashes at once (unsynced writes lost everywhere), all restart later
                foreach (var replica in replicas.Where(r => r.Node is not null))
                {
                    Crash(replica);
                    Schedule(now + rng.Between(50_000, 1_000_000), new SimEvent(EventKind.Restart, replica.Id));
                }

                break;
            case 8: // every new leader crashes within 20 ms of winning, for the length of the fault
                crashNewLeaderFaults++;
                break;
            case 10: // leaders die the moment their commit index first moves in their term
                crashAtFirstCommitFaults++;
                break;
            case 11: // a membership change: promote a learner, add a replica outside the configuration, or remove one
                if (leader?.Node is not null)
                {
                    ChangeMembership(leader);
                }

                break;
            default: // leadership transfer to a random replica (possibly lagging), or an operator's "campaign now"
                if (rng.Chance(0.5))
                {
                    var campaigner = replicas[rng.Below(replicas.Length)];
                    if (campaigner.Node?.Campaign() == true)
                    {
                        Record("campaign", campaigner.Id, campaigner.Node.Term.Value, 0);
                        Drain(campaigner);
                    }
                }
                else if (leader?.Node is not null)
                {
                    var transferTo = replicas[rng.Below(replicas.Length)];
                    if (leader.Node.TransferLeadership(transferTo.RaftId))
                    {
                        Drain(leader);
                    }
                }

                break;
        }
    }

    private void ChangeMembership(Replica leader)
    {
        var node = leader.Node!;
        var config = node.Config;
        var learner = replicas.FirstOrDefault(r => config.Learners.Contains(r.RaftId));
        var outsider = replicas.FirstOrDefault(r => !config.IsMember(r.RaftId));
        var (change, id) = learner is not null ? (ConfigChange.PromoteLearner, learner.Id)
            : outsider is not null ? (ConfigChange.AddLearner, outsider.Id)
            : config.Voters.Count > 2 ? (ConfigChange.Remove, Num(config.Voters[rng.Below(config.Voters.Count)])) // the leader itself, at times
            : (ConfigChange.AddLearner, 0);
        if (id == 0)
        {
            return;
        }

        var result = node.ProposeConfigChange(change, new ReplicaId((uint)id));
        Record("config", leader.Id, (long)change * 100 + id, result.Index.Value);
        Drain(leader);
    }

    private void EndFault(int kind, long faultId)
    {
        if (kind < 0)
        {
            // The end of the fault phase: everything heals, every crashed replica restarts.
            blocked.Clear();
            cutsByFault.Clear();
            lossyFaults = slowDiskFaults = crashNewLeaderFaults = crashAtFirstCommitFaults = 0;
            foreach (var replica in replicas.Where(r => r.Node is null))
            {
                Schedule(now + 1, new SimEvent(EventKind.Restart, replica.Id));
            }

            return;
        }

        if (cutsByFault.Remove((int)faultId, out var cuts))
        {
            foreach (var link in cuts)
            {
                if (blocked.TryGetValue(link, out var count))
                {
                    if (count <= 1)
                    {
                        blocked.Remove(link);
                    }
                    else
                    {
                        blocked[link] = count - 1;
                    }
                }
            }
        }

        switch (kind)
        {
            case 5:
                lossyFaults = Math.Max(0, lossyFaults - 1);
                break;
            case 6:
                slowDiskFaults = Math.Max(0, slowDiskFaults - 1);
                break;
            case 8:
                crashNewLeaderFaults = Math.Max(0, crashNewLeaderFaults - 1);
                break;
            case 10:
                crashAtFirstCommitFaults = Math.Max(0, crashAtFirstCommitFaults - 1);
                break;
        }
    }
}
