namespace FastSmr.Raft;

/// <summary>The follower: appends from the leader, acknowledgements only of persisted entries, heartbeats, TimeoutNow.</summary>
public sealed partial class RaftNode
{
    // The highest index known to match the current leader's log, and the highest acknowledged to it.
    private LogIndex leaderMatch;
    private LogIndex acknowledged;

    private void StepFollower(Message message)
    {
        if (message.Type is MessageType.Append or MessageType.Heartbeat or MessageType.Snapshot && FromSecondLeader(message))
        {
            return;
        }

        switch (message.Type)
        {
            case MessageType.Append:
                HeardFromLeader(message.From);
                HandleAppend(message);
                break;
            case MessageType.Heartbeat:
                HeardFromLeader(message.From);
                // The leader sent min(our match, its commit): we hold those entries.
                log.CommitTo(LogIndex.Min(message.Commit, log.LastIndex));
                if (message.Round != 0)
                {
                    Send(
                        new Message
                        {
                            Type = MessageType.HeartbeatResponse,
                            From = Id,
                            To = message.From,
                            Term = Term,
                            Round = message.Round,
                        }
                    );
                }

                break;
            case MessageType.TimeoutNow:
                StartElection(transfer: true);
                break;
            case MessageType.Snapshot:
                HeardFromLeader(message.From);
                HandleSnapshot(message);
                break;
        }
    }

    private void HeardFromLeader(ReplicaId leader)
    {
        Leader = leader;
        ResetElectionDeadline(now);
        // The lease promise: no vote or pre-vote for anyone else for a minimum election timeout from now (§6.4).
        noVoteUntil = Math.Max(noVoteUntil, now + options.ElectionTimeoutMinUs);
    }

    private void HandleAppend(Message message)
    {
        if (message.Index < log.Committed)
        {
            // Everything up to our commit index matches any leader's log (Leader Completeness): say so.
            leaderMatch = LogIndex.Max(leaderMatch, log.Committed);
            AcknowledgeAppend(message.From, LogIndex.Min(log.Committed, log.Stable));
            return;
        }

        if (!log.MatchTerm(message.Index, message.LogTerm))
        {
            // Hint: our last index if we are short, else the index before the conflicting term, never below commit.
            var hint =
                message.Index > log.LastIndex ? log.LastIndex : LogIndex.Max(log.Committed, log.FirstIndexOfTermAt(message.Index) - 1);
            Send(
                new Message
                {
                    Type = MessageType.AppendResponse,
                    From = Id,
                    To = message.From,
                    Term = Term,
                    Index = message.Index,
                    Reject = true,
                    RejectHint = hint,
                }
            );
            return;
        }

        if (log.AppendFromLeader(message.Index, message.Entries) is not { } lastNew)
        {
            Drop("entries that conflict with committed ones");
            return;
        }

        leaderMatch = LogIndex.Max(leaderMatch, lastNew);
        log.CommitTo(LogIndex.Min(message.Commit, lastNew));
        if (options.Bug == RaftBug.AcknowledgeBeforePersist)
        {
            AcknowledgeAppend(message.From, lastNew);
            return;
        }

        if (log.Stable >= lastNew)
        {
            // Nothing new to persist (a duplicate or a probe): answer at once.
            acknowledged = LogIndex.Max(acknowledged, lastNew);
            AcknowledgeAppend(message.From, lastNew);
        }
    }

    private void HandleSnapshot(Message message)
    {
        if (message.Index <= log.Committed)
        {
            leaderMatch = LogIndex.Max(leaderMatch, log.Committed);
            AcknowledgeAppend(message.From, LogIndex.Min(log.Committed, log.Stable));
            return;
        }

        if (log.MatchTerm(message.Index, message.LogTerm))
        {
            // We hold that entry already: it is committed; keep what follows it.
            leaderMatch = LogIndex.Max(leaderMatch, message.Index);
            log.CommitTo(message.Index);
            AcknowledgeStable();
            return;
        }

        // Replace the log: the host installs the state (Ready.Snapshot) and persists it before sending this answer.
        log.ResetTo(message.Index, message.LogTerm);
        _ = log.TakeChanges();
        configs.Clear();
        configs.Add((message.Index, message.Config ?? config));
        config = configs[0].Config;
        snapshotToInstall = new SnapshotInfo(message.Index, message.LogTerm, config);
        leaderMatch = acknowledged = message.Index;
        AcknowledgeAppend(message.From, message.Index);
    }

    /// <summary>Entries became durable: acknowledge to the leader what is both persisted and known to match its log.</summary>
    private void AcknowledgeStable()
    {
        if (Role != Role.Follower || !Leader.IsSome)
        {
            return;
        }

        var index = LogIndex.Min(leaderMatch, log.Stable);
        if (index > acknowledged)
        {
            acknowledged = index;
            AcknowledgeAppend(Leader, index);
        }
    }

    /// <summary>Tells the leader that this replica holds its log up to <paramref name="index"/>.</summary>
    private void AcknowledgeAppend(ReplicaId leader, LogIndex index) =>
        Send(
            new Message
            {
                Type = MessageType.AppendResponse,
                From = Id,
                To = leader,
                Term = Term,
                Index = index,
            }
        );
}
