namespace FastSmr.Raft;

/// <summary>The leader: pipelined replication, commitment by counting, heartbeat rounds and the lease, check-quorum, transfer.</summary>
public sealed partial class RaftNode
{
    private long transferDeadline;

    private long[] majorityScratch = [];

    /// <summary>
    /// Hands leadership to <paramref name="target"/> (thesis §3.10): stops taking proposals and gives up the lease at
    /// once, brings the target up to date, then tells it to campaign. Abandoned after a minimum election timeout.
    /// </summary>
    public bool TransferLeadership(ReplicaId target)
    {
        ThrowIfReadyOutstanding();
        if (Role != Role.Leader || target == Id || !config.IsVoter(target) || !progress.TryGetValue(target, out var pr))
        {
            return false;
        }

        TransferTarget = target;
        transferDeadline = now + options.ElectionTimeoutMinUs;
        if (pr.Match == log.LastIndex)
        {
            SendTimeoutNow(target);
        }
        else if (!pr.IsPaused(options))
        {
            SendAppend(target, pr);
        }

        return true;
    }

    private void SendTimeoutNow(ReplicaId target)
    {
        leaseForfeited = true;
        Send(
            new Message
            {
                Type = MessageType.TimeoutNow,
                From = Id,
                To = target,
                Term = Term,
            }
        );
    }

    private void BecomeLeader()
    {
        Role = Role.Leader;
        leaseForfeited = false;
        Leader = Id;
        TransferTarget = ReplicaId.None;
        progress.Clear();
        UpdateProgressMembers();

        round = 0;
        Array.Clear(roundSentAt);
        checkQuorumDeadline = now + options.ElectionTimeoutMinUs;
        noVoteUntil = Math.Max(noVoteUntil, now + options.ElectionTimeoutMinUs);
        // An entry of the leader's own term, so that everything before it can commit (thesis §3.6.2, §6.4).
        log.Append(new Entry(log.LastIndex + 1, Term, EntryKind.NoOp, ReadOnlyMemory<byte>.Empty));
        BroadcastHeartbeat();
        SendAppends();
    }

    private void TickLeader()
    {
        // While it leads, the leader itself votes for nobody else, and keeps that promise for a minimum election
        // timeout after it stops: its own vote is part of every majority its lease counts on.
        noVoteUntil = Math.Max(noVoteUntil, now + options.ElectionTimeoutMinUs);
        if (now >= heartbeatDeadline)
        {
            BroadcastHeartbeat();
        }

        if (TransferTarget.IsSome && now >= transferDeadline)
        {
            TransferTarget = ReplicaId.None; // the target did not take over in time: lead on
        }

        if (options.CheckQuorum && now >= checkQuorumDeadline)
        {
            checkQuorumDeadline = now + options.ElectionTimeoutMinUs;
            var active = config.IsVoter(Id) ? 1 : 0;
            foreach (var (id, pr) in progress)
            {
                active += pr.RecentActive && config.IsVoter(id) ? 1 : 0;
                pr.RecentActive = false;
            }

            if (active < config.Quorum)
            {
                BecomeFollower(Term, ReplicaId.None); // cannot reach a majority: stop claiming to lead
            }
        }
    }

    private void BroadcastHeartbeat()
    {
        heartbeatDeadline = now + options.HeartbeatIntervalUs;
        round++;
        roundSentAt[round % RoundHistory] = now;
        foreach (var (id, pr) in progress)
        {
            Send(Heartbeat(id, pr, round));
        }
    }

    /// <summary>
    /// A heartbeat to <paramref name="id"/>: it commits only up to what the follower is known to hold, so the follower can
    /// apply it without checking its log, and carries that entry's hash (decision 89). Round 0: a commit notice, not a
    /// lease round.
    /// </summary>
    private Message Heartbeat(ReplicaId id, Progress pr, long heartbeatRound)
    {
        var commit = LogIndex.Min(pr.Match, log.Committed);
        return new Message
        {
            Type = MessageType.Heartbeat,
            From = Id,
            To = id,
            Term = Term,
            Commit = commit,
            PrevHash = log.HashAt(commit),
            Round = heartbeatRound,
        };
    }

    private void SendAppends()
    {
        foreach (var (id, pr) in progress)
        {
            while (!pr.IsPaused(options) && pr.Next <= log.LastIndex)
            {
                SendAppend(id, pr);
            }
        }
    }

    private void SendAppend(ReplicaId id, Progress pr)
    {
        var prev = pr.Next - 1;
        var prevTerm = log.Term(prev);
        if (prevTerm == RaftLog.Unknown)
        {
            // The follower needs entries compacted away: it gets the snapshot (its state travels outside the core).
            Send(
                new Message
                {
                    Type = MessageType.Snapshot,
                    From = Id,
                    To = id,
                    Term = Term,
                    Index = log.SnapshotIndex,
                    LogTerm = log.SnapshotTerm,
                    Config = SnapshotConfig,
                    Commit = log.Committed,
                }
            );
            pr.SnapshotSent(log.SnapshotIndex);
            return;
        }

        var entries = log.Slice(prev, options.MessageBytesMax, out var bytes);
        Send(
            new Message
            {
                Type = MessageType.Append,
                From = Id,
                To = id,
                Term = Term,
                Index = prev,
                LogTerm = prevTerm,
                PrevHash = log.HashAt(prev),
                Entries = entries,
                Commit = log.Committed,
            }
        );
        pr.Sent(prev + entries.Count, bytes);
    }

    private void StepLeader(Message message)
    {
        if (!progress.TryGetValue(message.From, out var pr))
        {
            return;
        }

        if (message.Type == MessageType.AppendResponse && message.Index > log.LastIndex)
        {
            Drop("an acknowledgement of entries the leader does not have");
            return;
        }

        pr.RecentActive = true;
        switch (message.Type)
        {
            case MessageType.AppendResponse when message.Reject:
                if (pr.Rejected(message.Index, message.RejectHint, message.Differs))
                {
                    SendAppend(message.From, pr);
                }

                break;
            case MessageType.AppendResponse:
                var wasProbe = pr.State == ProgressState.Probe;
                if (pr.Acknowledged(message.Index))
                {
                    if (wasProbe)
                    {
                        pr.BecomeReplicate();
                    }

                    MaybeCommit();
                    if (message.From == TransferTarget && pr.Match == log.LastIndex)
                    {
                        SendTimeoutNow(message.From);
                    }
                }

                SendAppends();
                break;
            case MessageType.HeartbeatResponse:
                pr.AckedRound = Math.Max(pr.AckedRound, Math.Min(message.Round, round));
                if (pr.State == ProgressState.Probe)
                {
                    pr.ProbeSent = false; // the follower is there: probe again (the last probe may have been lost)
                }
                else if (pr.IsPaused(options))
                {
                    pr.FreeOneSlot();
                }

                if (pr.Match < log.LastIndex && !pr.IsPaused(options))
                {
                    SendAppend(message.From, pr);
                }

                break;
        }
    }

    /// <summary>
    /// The highest value a majority of the voters has reached: of their matches (the leader's own being its durable
    /// index, counted only while it is a voter itself, thesis §4.2.2), or of the heartbeat rounds they answered (the
    /// leader's own being the current round). Runs on every acknowledgement: no allocation.
    /// </summary>
    private long MajorityValue(bool acknowledgedRounds)
    {
        var voters = config.Voters;
        if (majorityScratch.Length < voters.Count)
        {
            majorityScratch = new long[voters.Count];
        }

        var values = majorityScratch.AsSpan(0, voters.Count);
        for (var i = 0; i < voters.Count; i++)
        {
            var voter = voters[i];
            values[i] =
                voter == Id ? (acknowledgedRounds ? round : log.Stable.Value)
                : !progress.TryGetValue(voter, out var pr) ? 0
                : acknowledgedRounds ? pr.AckedRound
                : pr.Match.Value;
        }

        values.Sort();
        return values[voters.Count - config.Quorum];
    }

    private void MaybeCommit()
    {
        var candidate = new LogIndex(MajorityValue(acknowledgedRounds: false));
        // Only an entry of the current term commits by counting; older ones commit with it (thesis §3.6.2, figure 3.7).
        if (candidate > log.Committed && (log.Term(candidate) == Term || options.Bug == RaftBug.CommitOldTermByCounting))
        {
            log.CommitTo(candidate);
            foreach (var (id, other) in progress)
            {
                Send(Heartbeat(id, other, heartbeatRound: 0)); // tell followers promptly
            }

            if (!config.IsVoter(Id) && log.Committed >= configs[^1].Index)
            {
                BecomeFollower(Term, ReplicaId.None); // removed, and the removal is committed: step down (thesis §4.2.2)
            }
        }
    }
}
