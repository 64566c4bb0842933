namespace FastSmr.Raft;

/// <summary>Elections: pre-vote, vote, the lease promise, leadership transfer's forced campaign.</summary>
public sealed partial class RaftNode
{
    /// <summary>
    /// Starts an election now (as if the election timeout had passed; with pre-vote, asks first). Refused (false) for a
    /// non-voter, and while this replica's own vote promise runs: voting for itself is a vote, and a leader's lease
    /// may rest on that promise.
    /// </summary>
    public bool Campaign()
    {
        ThrowIfReadyOutstanding();
        if (!config.IsVoter(Id) || InVotePromise() || Role == Role.Leader)
        {
            return false;
        }

        StartElection(transfer: false);
        return true;
    }

    private void StartElection(bool transfer)
    {
        ResetElectionDeadline(now);
        if (!config.IsVoter(Id) || (!transfer && InVotePromise()))
        {
            return; // learners and removed replicas never campaign; nobody campaigns inside its own promise
        }

        if (options.PreVote && !transfer)
        {
            Role = Role.PreCandidate;
            Leader = ReplicaId.None;
            votesFor.Clear();
            votesAgainst.Clear();
            votesFor.Add(Id);
            if (votesFor.Count >= config.Quorum)
            {
                BecomeCandidate(transfer);
                return;
            }

            foreach (var voter in config.Voters)
            {
                if (voter != Id)
                {
                    Send(
                        new Message
                        {
                            Type = MessageType.PreVote,
                            From = Id,
                            To = voter,
                            Term = Term.Next,
                            Index = log.LastIndex,
                            LogTerm = log.LastTerm,
                        }
                    );
                }
            }

            return;
        }

        BecomeCandidate(transfer);
    }

    private void BecomeCandidate(bool transfer)
    {
        Term = Term.Next;
        Vote = Id;
        Role = Role.Candidate;
        Leader = ReplicaId.None;
        TransferTarget = ReplicaId.None;
        progress.Clear();
        votesFor.Clear();
        votesAgainst.Clear();
        votesFor.Add(Id);
        ResetElectionDeadline(now);
        if (votesFor.Count >= config.Quorum)
        {
            BecomeLeader();
            return;
        }

        foreach (var voter in config.Voters)
        {
            if (voter != Id)
            {
                // The host persists (term, vote) before it sends this (Ready's rule 1).
                Send(
                    new Message
                    {
                        Type = MessageType.Vote,
                        From = Id,
                        To = voter,
                        Term = Term,
                        Index = log.LastIndex,
                        LogTerm = log.LastTerm,
                        Transfer = transfer,
                    }
                );
            }
        }
    }

    private void HandlePreVote(Message message)
    {
        // Granted for a term beyond ours to a log at least as up to date as ours; no state changes (thesis §9.6).
        var grant = message.Term > Term && log.IsUpToDate(message.Index, message.LogTerm) && (message.Transfer || !InVotePromise());
        Send(
            new Message
            {
                Type = MessageType.PreVoteResponse,
                From = Id,
                To = message.From,
                Term = grant ? message.Term : Term,
                Reject = !grant,
            }
        );
    }

    private void HandleVote(Message message)
    {
        // Here message.Term == Term (a higher term was adopted above, unless the lease promise refused it). The promise
        // also holds against a request in our own term: the term may have moved for another reason (a rejection that
        // carried it) while the promise still runs. Found by the simulator (seed 41496 at commit aa8700d).
        var grant =
            (Vote == message.From || (!Vote.IsSome && (message.Transfer || !InVotePromise())))
            && log.IsUpToDate(message.Index, message.LogTerm)
            && Role != Role.Leader;
        if (grant)
        {
            Vote = message.From;
            ResetElectionDeadline(now);
        }

        Send(
            new Message
            {
                Type = MessageType.VoteResponse,
                From = Id,
                To = message.From,
                Term = Term,
                Reject = !grant,
            }
        );
    }

    private void StepCandidate(Message message)
    {
        switch (message.Type)
        {
            case MessageType.Append:
            case MessageType.Heartbeat:
            case MessageType.Snapshot:
                // A leader exists in our term (or a pre-candidate hears the current leader): follow it.
                if (!FromSecondLeader(message))
                {
                    BecomeFollower(message.Term, message.From);
                    StepFollower(message);
                }

                return;
            case MessageType.PreVoteResponse when Role == Role.PreCandidate && config.IsVoter(message.From):
            case MessageType.VoteResponse when Role == Role.Candidate && config.IsVoter(message.From):
                (message.Reject ? votesAgainst : votesFor).Add(message.From);
                if (votesFor.Count >= config.Quorum)
                {
                    if (Role == Role.PreCandidate)
                    {
                        BecomeCandidate(transfer: false);
                    }
                    else
                    {
                        BecomeLeader();
                    }
                }
                else if (votesAgainst.Count >= config.Quorum)
                {
                    BecomeFollower(Term, ReplicaId.None);
                }

                return;
        }
    }
}
