namespace FastSmr.Raft;

// Membership (thesis 4.1): single-server changes with learners, proposed one at a time, in force from when they are
// appended; the configuration rebuilt after a truncation or a snapshot.
public sealed partial class RaftNode
{
    /// <summary>
    /// Proposes a single-server membership change (thesis §4.1). Only once the leader has committed an entry of its own
    /// term (the 2015 erratum: otherwise a change from an earlier leader, not yet known committed, could overlap this
    /// one), and only one change at a time: Busy otherwise. The new configuration is in effect as soon as it is appended.
    /// </summary>
    public Proposal ProposeConfigChange(ConfigChange change, ReplicaId id)
    {
        ThrowIfReadyOutstanding();
        if (Role != Role.Leader)
        {
            return new Proposal(ProposeStatus.NotLeader, default, default, Leader);
        }

        if (TransferTarget.IsSome || log.Term(log.Committed) != Term || configs[^1].Index > log.Committed)
        {
            return new Proposal(ProposeStatus.Busy, default, default, Id);
        }

        var voters = config.Voters.ToList();
        var learners = config.Learners.ToList();
        switch (change)
        {
            case ConfigChange.AddLearner when !config.IsMember(id) && id.IsSome:
                learners.Add(id);
                break;
            case ConfigChange.PromoteLearner when learners.Remove(id):
                voters.Add(id);
                break;
            case ConfigChange.Remove when (voters.Contains(id) && voters.Count > 1) || learners.Contains(id):
                voters.Remove(id);
                learners.Remove(id);
                break;
            default:
                throw new ArgumentException($"cannot {change} replica {id} in {config}", nameof(change));
        }

        var entry = new Entry(log.LastIndex + 1, Term, EntryKind.Config, new ClusterConfig(voters, learners).Encode());
        log.Append(entry);
        RefreshConfig();
        SendAppends();
        return new Proposal(ProposeStatus.Ok, entry.Index, entry.Term, Id);
    }

    /// <summary>Re-reads the configuration from the log where it changed (appended, truncated, replaced by a snapshot).</summary>
    private void RefreshConfig(LogIndex? fromIndex = null)
    {
        var from = LogIndex.Min(fromIndex ?? RaftLog.NoChange, log.TakeChanges());
        if (from == RaftLog.NoChange)
        {
            return;
        }

        while (configs.Count > 1 && configs[^1].Index >= from)
        {
            configs.RemoveAt(configs.Count - 1); // truncated away: the previous configuration is back in effect
        }

        for (var index = LogIndex.Max(from, log.FirstIndex); index <= log.LastIndex; index++)
        {
            var entry = log.At(index);
            if (entry.Type == EntryKind.Config && index > configs[^1].Index)
            {
                configs.Add((index, ClusterConfig.Decode(entry.Data.Span)));
            }
        }

        if (!configs[^1].Config.Equals(config))
        {
            config = configs[^1].Config;
            if (Role == Role.Leader)
            {
                UpdateProgressMembers();
            }
        }
    }

    /// <summary>
    /// The leader tracks every member but itself. At election, everyone starts probing after the last entry; a member
    /// added later starts at the configuration entry that added it, so the first append goes out at once.
    /// </summary>
    private void UpdateProgressMembers()
    {
        var next = Role == Role.Leader && progress.Count > 0 ? LogIndex.Max(new LogIndex(1), log.LastIndex) : log.LastIndex + 1;
        foreach (var member in config.Members)
        {
            if (member != Id && !progress.ContainsKey(member))
            {
                progress[member] = new Progress(next) { RecentActive = true };
            }
        }

        foreach (var id in progress.Keys.Where(id => !config.IsMember(id)).ToList())
        {
            progress.Remove(id);
        }
    }
}
