using FastSmr.Raft;
using Xunit.Abstractions;

using static FastSmr.Tests.Units;

namespace FastSmr.Tests.Raft;

/// <summary>The Raft paper's (and thesis') rules, one scenario each, read against FastSmr.Raft.</summary>
public sealed class RaftScenarioTests(ITestOutputHelper output)
{
    /// <summary>
    /// Thesis figure 3.7 (the paper's figure 8): an entry from an older term that sits on a majority is not committed by
    /// counting; a later leader may legitimately overwrite it. With the injected bug, the same history commits it and
    /// then loses it.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Figure8_AnOlderTermEntryStoredOnAMajority_IsNotCommittedByCounting(bool injectBug)
    {
        // One entry per AppendEntries, so that catching a follower up takes several messages.
        var h = new RaftHarness(5, o => o with { MessageBytesMax = 1, Bug = injectBug ? RaftBug.CommitOldTermByCounting : RaftBug.None });
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        var t1 = h[1].Term;

        // (a) S1 leads and replicates x and y (index 2, 3) to S2 only.
        foreach (var other in new[] { 3, 4, 5 })
        {
            h.Cut(1, other);
            h.Cut(other, 1);
        }

        h.Propose(1, "x");
        h.Propose(1, "y");
        h.DeliverAll();
        Assert.True(h[2].LastIndex == I(3), $"S2 last index {h[2].LastIndex}, S1 {h[1].Role} term {h[1].Term} last {h[1].LastIndex}");

        // (b) S1 crashes; S5 wins with S3 and S4 and appends an entry of its term, which reaches nobody; S5 crashes.
        h.Crash(1);
        h.Heal();
        h.Quiet();
        h.Elect(5, votesOnly: true);
        var t2 = h[5].Term;
        h.DropAll(m => m.From == R(5));
        h.Crash(5);

        // (c) S1 restarts and wins (S2, S3 vote; S4 cannot hear it). Catching S3 up, only x (index 2) gets through:
        //     x is now on S1, S2 and S3 — a majority — but it is from term t1, and S1's own entry is on S1 and S2 only.
        h.Start(1);
        h.Cut(1, 4);
        h.Cut(4, 1);
        h.Quiet();
        h.Elect(1, votesOnly: true);
        h.DeliverAll(m => !(m.From == R(1) && m.To == R(3) && m.Entries.Any(e => e.Index == I(3)))); // y never reaches S3, so neither can anything after it
        Assert.Equal(t1, h[3].TermAt(I(2)));
        output.WriteLine($"(c) S1 leads term {h[1].Term}; x on S1, S2, S3; S1's commit index {h[1].CommitIndex}");
        var appliedX = h.Applied[1].Any(e => RaftHarness.Text(e) == "x");
        if (injectBug)
        {
            Assert.Equal(I(2), h[1].CommitIndex); // the bug: committed by counting, and applied
            Assert.True(appliedX);
        }
        else
        {
            Assert.Equal(I(1), h[1].CommitIndex); // §3.6.2: never commit an older term's entry by counting replicas
            Assert.False(appliedX);
        }

        // (d) S1 crashes; S5 restarts and wins with S3 and S4 (its last term t2 beats their t1).
        h.Crash(1);
        h.Start(5);
        h.Heal();
        h.Quiet();
        h.Elect(5, votesOnly: true);
        Assert.Equal(t2, h[5].TermAt(I(2)));
        if (injectBug)
        {
            // The buggy cluster told a client "x committed" (S1 applied it) and elected a leader without x: lost.
            Assert.True(appliedX);
            return;
        }

        // Correct Raft lost nothing that was committed: S5 overwrites the uncommitted x everywhere.
        h.DeliverAll();
        h.Advance(50_000);
        foreach (var id in new[] { 2, 3, 4, 5 })
        {
            Assert.Equal(t2, h[id].TermAt(I(2)));
            Assert.DoesNotContain(h.Applied[id], e => RaftHarness.Text(e) == "x");
        }
    }

    [Fact]
    public void StaleLeader_CannotCommit_AndStepsDownWhenItHearsTheNewTerm()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.Isolate(1);
        var stale = h.Propose(1, "lost");
        Assert.Equal(ProposeStatus.Ok, stale.Status);
        h.Quiet();
        h.Elect(2);
        h.Propose(2, "kept");
        h.DeliverAll();
        Assert.Equal(0, h[1].CommitIndex >= stale.Index ? 1 : 0);
        h.Heal();
        h.Advance(50_000);
        Assert.Equal(Role.Follower, h[1].Role);
        Assert.Equal(h[2].Term, h[1].Term);
        Assert.DoesNotContain(h.Applied[1], e => RaftHarness.Text(e) == "lost"); // overwritten, never applied
        Assert.Contains(h.Applied[1], e => RaftHarness.Text(e) == "kept");
    }

    [Fact]
    public void LogConflict_FollowerWithExtraEntriesFromAnOldTerm_ConvergesToTheLeadersLog()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.Isolate(3);
        h.Propose(1, "a");
        h.DeliverAll();
        h.Isolate(1);
        for (var i = 0; i < 5; i++)
        {
            h.Propose(1, "old" + i); // only S1 has these
        }

        h.Crash(1);
        h.Heal();
        h.Quiet();
        h.Elect(2);
        h.Propose(2, "b");
        h.DeliverAll();
        h.Start(1);
        h.Advance(50_000);
        Assert.Equal(h[2].LastIndex, h[1].LastIndex);
        for (var i = 1; i <= h[2].LastIndex.Value; i++)
        {
            Assert.Equal(h[2].TermAt(I(i)), h[1].TermAt(I(i)));
        }

        Assert.DoesNotContain(h.Applied[1], e => RaftHarness.Text(e).StartsWith("old", StringComparison.Ordinal));
        Assert.Equal(["a", "b"], h.Applied[3].Where(e => e.Type == EntryKind.Normal).Select(RaftHarness.Text));
    }

    [Fact]
    public void PreVote_APartitionedReplicaDoesNotDisruptTheLeaderWhenItReturns()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        var term = h[1].Term;
        h.Isolate(3);
        h.Advance(20 * RaftHarness.ElectionUs); // S3 times out again and again
        Assert.Equal(term, h[3].Term); // pre-votes failed, so its term never moved
        h.Heal();
        h.Advance(100_000);
        Assert.Equal(Role.Leader, h[1].Role);
        Assert.Equal(term, h[1].Term);
    }

    [Fact]
    public void CheckQuorum_ALeaderCutOffFromTheMajority_StepsDownWithinAnElectionTimeout()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.Isolate(1);
        h.Advance(3 * RaftHarness.ElectionUs);
        Assert.NotEqual(Role.Leader, h[1].Role);
        Assert.Equal(0, h[1].LeaseUntil);
    }

    [Fact]
    public void LeadershipTransfer_ToALaggingReplica_CatchesItUpThenHandsOver()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.Isolate(3);
        for (var i = 0; i < 10; i++)
        {
            h.Propose(1, "e" + i);
        }

        h.DeliverAll();
        h.Heal();
        var last = h[1].LastIndex;
        Assert.True(h[3].LastIndex < last);
        Assert.True(h[1].TransferLeadership(R(3)));
        Assert.Equal(0, h[1].LeaseUntil); // the lease is given up at once
        Assert.Equal(ProposeStatus.Busy, h[1].Propose(new byte[1]).Status);
        h.DeliverAll();
        Assert.Equal(Role.Leader, h[3].Role);
        Assert.Equal(last + 1, h[3].LastIndex); // caught up, then its own no-op
        Assert.Equal(h[1].TermAt(last), h[3].TermAt(last));
        Assert.Equal(Role.Follower, h[1].Role);
    }

    /// <summary>
    /// Regression, found by the simulator (seed 1244 of the simulator at commit 66b0a3d, 3 replicas): a transfer is
    /// abandoned after TimeoutNow went out; the old leader resumed its lease while the target, whose transfer votes
    /// ignore lease promises, won an election.
    /// </summary>
    [Fact]
    public void LeadershipTransfer_Abandoned_AfterTimeoutNowWentOut_NeverResumesTheLease()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.Advance(50_000);
        Assert.True(h[1].LeaseUntil > h.Now);
        Assert.True(h[1].TransferLeadership(R(2)));
        h.ProcessAll();
        Assert.Contains(h.InFlight, m => m.Type == MessageType.TimeoutNow);
        h.DropAll(m => m.Type == MessageType.TimeoutNow); // delayed, say
        h.Advance(2 * RaftHarness.ElectionUs); // the transfer times out; S1 leads on
        Assert.Equal(Role.Leader, h[1].Role);
        Assert.Equal(R(0), h[1].TransferTarget);
        Assert.Equal(0, h[1].LeaseUntil);
    }

    /// <summary>
    /// Regression, found by the simulator (seed 41496 at commit aa8700d, 3 replicas, after 83,108 passing seeds): a
    /// follower inside its lease promise learned a newer term from a rejected pre-vote, then granted a vote in that
    /// term — the promise only guarded requests for a term above its own.
    /// </summary>
    [Fact]
    public void LeasePromise_HoldsEvenAfterTheTermMovedForAnotherReason()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(2);
        h.DeliverAll();
        var term = h[2].Term;
        h.Advance(20_000);
        Assert.True(h[2].LeaseUntil > h.Now);

        // S3 hears of term+1 from a rejected pre-vote (S1's, from the past, say), then S1 asks for its vote in term+1.
        h[3].Step(new Message { Type = MessageType.PreVoteResponse, From = R(1), To = R(3), Term = term.Next, Reject = true }, h.Now);
        Assert.Equal(term.Next, h[3].Term);
        h[3].Step(new Message { Type = MessageType.Vote, From = R(1), To = R(3), Term = term.Next, Index = I(h[1].LastIndex), LogTerm = T(h[1].TermAt(h[1].LastIndex)) }, h.Now);
        h.ProcessAll();
        Assert.Contains(h.InFlight, m => m.Type == MessageType.VoteResponse && m.From == R(3) && m.Reject);
        Assert.Equal(R(0), h[3].Vote); // S2's lease still holds: S3 promised not to vote
    }

    /// <summary>
    /// Regression, found by the simulator (seed 8 on its first run): with every append of a full pipelining window
    /// lost, the leader sent nothing more to that follower, ever; the commit index froze.
    /// </summary>
    [Fact]
    public void Pipelining_AWindowOfLostAppends_DoesNotStallReplication()
    {
        var h = new RaftHarness(3, o => o with { InflightMessagesMax = 2 });
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.Propose(1, "warm");
        h.DeliverAll(); // followers are in the replicate state now
        for (var i = 0; i < 6; i++)
        {
            h.Propose(1, "lost" + i);
            h.DropAll(m => m.Type == MessageType.Append && m.To == R(3)); // the network eats every append to S3
        }

        h.Advance(100_000); // heartbeats keep flowing both ways
        Assert.Equal(h[1].LastIndex, h[3].LastIndex);
        Assert.Equal(h[1].CommitIndex, h[3].CommitIndex);
    }

    [Fact]
    public void Persistence_ALeaderCountsItselfAndFollowersAcknowledge_OnlyWhatIsDurable()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.AutoPersist = false;
        var p = h.Propose(1, "d");
        h.DeliverAll();
        Assert.True(h[1].CommitIndex < p.Index); // sent (before its own write was durable) but nothing durable anywhere
        Assert.DoesNotContain(h.InFlight, m => m.Type == MessageType.AppendResponse && m.Index >= p.Index);
        h.PersistAll();
        h.DeliverAll();
        Assert.Equal(p.Index, h[1].CommitIndex);
    }

    [Fact]
    public void LeasePromise_AFollowerThatHeardFromTheLeader_GrantsNoVote_AndARestartedReplicaNoneAtFirst()
    {
        var h = new RaftHarness(3, o => o with { PreVote = false });
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        var term = h[1].Term;
        Assert.False(h[2].Campaign()); // S2 heard from S1 moments ago: it does not even vote for itself
        h[3].Step(new Message { Type = MessageType.Vote, From = R(2), To = R(3), Term = term.Next, Index = I(h[2].LastIndex), LogTerm = T(h[2].TermAt(h[2].LastIndex)) }, h.Now);
        Assert.Equal(term, h[3].Term); // a vote request inside the promise: neither a vote nor a term change (thesis §4.2.3)
        Assert.Equal(Role.Leader, h[1].Role);

        h.Crash(1);
        h.Advance(RaftHarness.ElectionUs / 2, deliver: false);
        h.Crash(3);
        h.Start(3); // a restarted replica: no vote for one minimum election timeout from now
        h.Advance((RaftHarness.ElectionUs * 3 / 5) + 1_000, deliver: false); // S2's own promise is over, S3's is not
        h.InFlight.Clear();
        Assert.True(h[2].Role == Role.Candidate || h[2].Campaign());
        h.DeliverAll(m => m.Type is MessageType.Vote or MessageType.VoteResponse);
        Assert.NotEqual(Role.Leader, h[2].Role);
        Assert.NotEqual(R(2), h[3].Vote); // the restarted replica kept its promise
    }

    [Fact]
    public void Membership_ANewLeaderChangesNothing_UntilItHasCommittedAnEntryOfItsOwnTerm()
    {
        var h = new RaftHarness(4, voters: 3);
        h.Quiet();
        h.Elect(1, votesOnly: true); // elected; its no-op is not committed yet
        Assert.Equal(ProposeStatus.Busy, h[1].ProposeConfigChange(ConfigChange.AddLearner, R(4)).Status); // the 2015 erratum
        h.DeliverAll();
        Assert.Equal(ProposeStatus.Ok, h[1].ProposeConfigChange(ConfigChange.AddLearner, R(4)).Status);
        Assert.Equal(ProposeStatus.Busy, h[1].ProposeConfigChange(ConfigChange.PromoteLearner, R(4)).Status); // one at a time
        Assert.Equal([R(4)], h[1].Config.Learners); // in effect as soon as it is in the log
    }

    [Fact]
    public void Membership_ALearnerReceivesTheLog_DoesNotCount_ThenIsPromoted()
    {
        var h = new RaftHarness(4, voters: 3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.ProposeConfigChange(1, ConfigChange.AddLearner, 4);
        h.DeliverAll();
        Assert.Equal(h[1].LastIndex, h[4].LastIndex);
        Assert.Equal([R(4)], h[4].Config.Learners);

        // With S2 and S3 cut off, the leader and the learner are two replicas but not a majority of the voters.
        h.Isolate(2);
        h.Isolate(3);
        var p = h.Propose(1, "not yet");
        h.DeliverAll();
        Assert.True(h[1].CommitIndex < p.Index);
        h.Heal();
        h.Advance(50_000); // the next heartbeats find S2 and S3 again
        Assert.Equal(p.Index, h[1].CommitIndex);

        h.ProposeConfigChange(1, ConfigChange.PromoteLearner, 4);
        h.DeliverAll();
        Assert.Equal([R(1), R(2), R(3), R(4)], h[1].Config.Voters);
        Assert.Equal(3, h[1].Config.Quorum);
        h.Advance(10 * RaftHarness.ElectionUs);
        Assert.Equal(Role.Leader, h[1].Role); // a learner never campaigned; the promotion disturbed nothing
    }

    [Fact]
    public void Membership_ARemovedLeader_StepsDownOnceItsRemovalCommits_AndNeverCampaigns()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        var removal = h.ProposeConfigChange(1, ConfigChange.Remove, 1);
        Assert.Equal(Role.Leader, h[1].Role); // it manages the change until it commits (thesis §4.2.2)
        h.DeliverAll();
        Assert.True(h[2].CommitIndex >= removal.Index || h[3].CommitIndex >= removal.Index || h[1].CommitIndex >= removal.Index);
        Assert.NotEqual(Role.Leader, h[1].Role);
        h.Advance(20 * RaftHarness.ElectionUs);
        Assert.NotEqual(Role.Leader, h[1].Role);
        Assert.True(h[2].Role == Role.Leader || h[3].Role == Role.Leader);
        Assert.Equal([R(2), R(3)], (h[2].Role == Role.Leader ? h[2] : h[3]).Config.Voters);
    }

    [Fact]
    public void Snapshot_AFollowerBehindTheLeadersFirstIndex_GetsTheSnapshot_ThenTheRest()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.DeliverAll();
        h.Isolate(3);
        var appliedBefore = h.Applied[3].Count;
        for (var i = 0; i < 20; i++)
        {
            h.Propose(1, "s" + i);
        }

        h.DeliverAll();
        var compactAt = h[1].CommitIndex - 2;
        h.Compact(1, compactAt.Value);
        h.Propose(1, "after");
        h.DeliverAll();
        h.Heal();
        h.Advance(50_000);
        Assert.Equal(compactAt.Value, h.Installed[3]);
        Assert.Equal(h[1].LastIndex, h[3].LastIndex);
        Assert.Equal(h[1].TermAt(h[1].LastIndex), h[3].TermAt(h[3].LastIndex));
        Assert.Contains(h.Applied[3], e => RaftHarness.Text(e) == "after");
        Assert.DoesNotContain(h.Applied[3].Skip(appliedBefore), e => e.Index <= compactAt); // those came with the snapshot
    }
}
