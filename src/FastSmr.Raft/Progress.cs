namespace FastSmr.Raft;

/// <summary>How the leader replicates to one follower (the etcd-raft shape).</summary>
internal enum ProgressState
{
    /// <summary>Where the follower's log matches is unknown: one append at a time until one is accepted.</summary>
    Probe,

    /// <summary>The follower matches: appends are pipelined, optimistically advancing <see cref="Progress.Next"/>.</summary>
    Replicate,
}

/// <summary>The leader's view of one follower: match, next, the in-flight window (bounded in messages and bytes).</summary>
internal sealed class Progress(LogIndex next)
{
    private readonly Queue<(LogIndex LastIndex, long Bytes)> inflight = new();

    public LogIndex Match { get; set; }

    public LogIndex Next { get; set; } = next;

    public ProgressState State { get; private set; } = ProgressState.Probe;

    /// <summary>In Probe: an append is out and unanswered, so no other is sent until an answer or a heartbeat response.</summary>
    public bool ProbeSent { get; set; }

    /// <summary>Heard from since the last check-quorum.</summary>
    public bool RecentActive { get; set; }

    /// <summary>The highest heartbeat round the follower answered.</summary>
    public long AckedRound { get; set; }

    public long InflightBytes { get; private set; }

    public int InflightCount => inflight.Count;

    public void BecomeProbe()
    {
        State = ProgressState.Probe;
        Next = Match + 1;
        ProbeSent = false;
        inflight.Clear();
        InflightBytes = 0;
    }

    public void BecomeReplicate()
    {
        State = ProgressState.Replicate;
        Next = Match + 1;
        ProbeSent = false;
    }

    /// <summary>A snapshot up to <paramref name="index"/> went out: wait for its answer like a probe's.</summary>
    public void SnapshotSent(LogIndex index)
    {
        BecomeProbe();
        Next = index + 1;
        ProbeSent = true;
    }

    public bool IsPaused(RaftOptions options) =>
        State == ProgressState.Probe
            ? ProbeSent
            : inflight.Count >= options.InflightMessagesMax || InflightBytes >= options.InflightBytesMax;

    public void Sent(LogIndex lastIndex, long bytes)
    {
        if (State == ProgressState.Replicate)
        {
            Next = lastIndex + 1;
            inflight.Enqueue((lastIndex, bytes));
            InflightBytes += bytes;
        }
        else
        {
            ProbeSent = true;
        }
    }

    /// <summary>
    /// The follower answered a heartbeat while the window is full: free one slot, so one more append goes out. If the
    /// window was full of lost appends, that append leaves a gap, the follower rejects it, and the leader probes again.
    /// </summary>
    public void FreeOneSlot()
    {
        if (State == ProgressState.Replicate && inflight.Count > 0)
        {
            InflightBytes -= inflight.Dequeue().Bytes;
        }
    }

    /// <summary>An acknowledgement up to <paramref name="index"/>; false if it tells nothing new.</summary>
    public bool Acknowledged(LogIndex index)
    {
        while (inflight.Count > 0 && inflight.Peek().LastIndex <= index)
        {
            InflightBytes -= inflight.Dequeue().Bytes;
        }

        if (index <= Match)
        {
            return false;
        }

        Match = index;
        Next = LogIndex.Max(Next, index + 1);
        ProbeSent = false;
        return true;
    }

    /// <summary>A rejection of an append after <paramref name="rejected"/>; false when it is stale (answered an older append).</summary>
    public bool Rejected(LogIndex rejected, LogIndex hint, bool differs = false)
    {
        if (differs)
        {
            // The follower holds other bytes than ours at an index it acknowledged (a forged entry): what it matches is
            // below that. Lowering Match only makes commit more careful; resend from there.
            Match = LogIndex.Min(Match, rejected - 1);
            BecomeProbe();
            Next = LogIndex.Max(Match + 1, LogIndex.Min(rejected, hint + 1));
            return true;
        }

        if (State == ProgressState.Replicate)
        {
            if (rejected <= Match)
            {
                return false;
            }

            BecomeProbe();
            return true;
        }

        if (rejected != Next - 1)
        {
            return false;
        }

        if (hint < Match)
        {
            // The follower's log ends below an entry it acknowledged: it lost it (a wiped or damaged disk, rejoining as a
            // replica without state). Probing at Match + 1 would be refused forever; lowering Match only makes commit
            // more careful (decision 99, found by the whole-system simulator).
            Match = hint;
        }

        Next = LogIndex.Max(Match + 1, LogIndex.Min(rejected, hint + 1));
        ProbeSent = false;
        return true;
    }
}
