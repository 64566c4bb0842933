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
                // The leader sent min(our match, its commit): we hold those entries — unless the one there is not the
                // leader's (a forged entry we acknowledged): then it is not committed here, and the leader resends it.
                if (message.Commit > log.Committed && message.Commit <= log.LastIndex && EntryDiffers(message.Commit, message.PrevHash))
                {
                    RejectAppend(message.From, message.Commit, message.Commit - 1, differs: true);
                }
                else
                {
                    log.CommitTo(LogIndex.Min(message.Commit, log.LastIndex));
                }

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
            RejectAppend(message, hint);
            return;
        }

        if (PreviousEntryDiffers(message))
        {
            // The previous entry has the leader's term but not its bytes (a forger's, or a broken peer's): Log Matching by
            // term alone would keep it for good. Reject as a conflict just below it, so the leader resends that entry and
            // AppendFromLeader replaces it.
            RejectAppend(message, LogIndex.Max(log.Committed, message.Index - 1), differs: true);
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

    /// <summary>
    /// Whether this replica's entry at the append's previous index differs from the leader's (decision 89). At or below
    /// the commit index nothing can be replaced, so nothing is checked there; nor when either side lacks the bytes.
    /// </summary>
    private bool PreviousEntryDiffers(Message message) => message.Index > log.Committed && EntryDiffers(message.Index, message.PrevHash);

    /// <summary>Whether this replica holds entry <paramref name="index"/> with another hash than the leader's (0: not known).</summary>
    private bool EntryDiffers(LogIndex index, ulong leaderHash) =>
        leaderHash != 0 && log.HashAt(index) is var held and not 0 && held != leaderHash;

    private void RejectAppend(Message message, LogIndex hint, bool differs = false) =>
        RejectAppend(message.From, message.Index, hint, differs);

    private void RejectAppend(ReplicaId leader, LogIndex index, LogIndex hint, bool differs) =>
        Send(
            new Message
            {
                Type = MessageType.AppendResponse,
                From = Id,
                To = leader,
                Term = Term,
                Index = index,
                Reject = true,
                RejectHint = hint,
                Differs = differs,
            }
        );

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
