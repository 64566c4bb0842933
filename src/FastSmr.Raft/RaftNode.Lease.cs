namespace FastSmr.Raft;

// The lease (thesis 6.4): the leader counts it from the send time of the heartbeat round a majority acknowledged; a
// follower that acknowledged promises to grant no vote for a minimum election timeout; a transfer forfeits it.
public sealed partial class RaftNode
{
    private const int RoundHistory = 256;
    private readonly long[] roundSentAt = new long[RoundHistory];
    private long round;

    // Once TimeoutNow went out, the target may win an election at any later time with votes that ignore the lease
    // promise (they are transfer votes): this leader never claims a lease again in this term, even if the transfer is
    // abandoned. Found by the simulator (seed 1244 at the time): an abandoned transfer whose TimeoutNow still arrived.
    private bool leaseForfeited;

    /// <summary>
    /// Until when (on this replica's clock) the leader's lease holds: the send time of the latest heartbeat round a
    /// majority acknowledged, plus the minimum election timeout × (1 − ρ) (thesis §6.4). 0 when not leading, while a
    /// leadership transfer runs, or before a majority answered a round of this term.
    /// </summary>
    public long LeaseUntil
    {
        get
        {
            if (Role != Role.Leader || TransferTarget.IsSome || leaseForfeited)
            {
                return 0;
            }

            var majorityRound = MajorityValue(acknowledgedRounds: true);
            if (majorityRound == 0 || majorityRound <= round - RoundHistory)
            {
                return 0;
            }

            return roundSentAt[majorityRound % RoundHistory] + (long)(options.ElectionTimeoutMinUs * (1 - options.ClockDriftBound));
        }
    }

    private bool InVotePromise() => options.Bug != RaftBug.VoteInsideLease && now < noVoteUntil;
}
