using FastSmr.Raft;
using Xunit.Abstractions;

using static FastSmr.Tests.Units;

namespace FastSmr.Tests.Raft;

/// <summary>
/// Messages no correct replica sends, stepped straight into the core (as a forger on a plaintext port, or an
/// authenticated but broken peer, could): each is dropped and counted, nothing throws, and the cluster stays live and
/// consistent. Each scenario reproduces a finding of the attack on d9a8542 (issue 13).
/// </summary>
public sealed class HostilePeerTests(ITestOutputHelper output)
{
    private static byte[] Bytes(string text) => System.Text.Encoding.UTF8.GetBytes(text);

    /// <summary>A 3-replica cluster with replica 1 leading and one entry ("a") committed everywhere.</summary>
    private static RaftHarness Running()
    {
        var h = new RaftHarness(3);
        h.Quiet();
        h.Elect(1);
        h.Propose(1, "a");
        h.Advance(50_000);
        Assert.All(h.Nodes.Values, n => Assert.Equal(h[1].LastIndex, n.CommitIndex));
        return h;
    }

    private static void AssertCommitsEverywhere(RaftHarness h, int leader, string text, int except = 0)
    {
        Assert.Equal(ProposeStatus.Ok, h.Propose(leader, text).Status);
        h.Advance(50_000);
        foreach (var (id, applied) in h.Applied.Where(p => p.Key != except))
        {
            Assert.True(applied.Any(e => RaftHarness.Text(e) == text), "replica " + id + " did not apply " + text);
        }
    }

    [Fact]
    public void AHeartbeatWithTheLargestTerm_IsDropped_AndTheLeaderKeepsLeading()
    {
        var h = Running();
        var term = h[2].Term;
        h[2].Step(new Message { Type = MessageType.Heartbeat, From = R(3), To = R(2), Term = new Term(long.MaxValue) }, h.Now);

        Assert.Equal(term, h[2].Term);
        Assert.Equal(1, h[2].DroppedMessages);
        output.WriteLine("dropped: " + h[2].LastDropReason);
        AssertCommitsEverywhere(h, 1, "b");
        Assert.Equal(Role.Leader, h[1].Role);
    }

    [Fact]
    public void AForgedJumpOfTheLargestAllowedSize_LeavesAClusterThatStillElectsAndCommits()
    {
        // A term within the bound is taken (a correct peer may need it); the cluster moves to the new term, elects and
        // commits, and a replica that missed all of it still catches up. A larger jump from there is dropped.
        var h = Running();
        var jumped = RaftNode.TermCeiling;
        h.Isolate(3);
        h[2].Step(new Message { Type = MessageType.Heartbeat, From = R(3), To = R(2), Term = jumped }, h.Now);
        Assert.Equal(jumped, h[2].Term);
        h.Advance(20 * RaftHarness.ElectionUs);
        h.Heal();
        h.Advance(20 * RaftHarness.ElectionUs);
        var leader = h.Nodes.Single(n => n.Value.Role == Role.Leader).Key;
        foreach (var (id, n) in h.Nodes)
        {
            output.WriteLine($"replica {id}: {n.Role} term {n.Term} leader {n.Leader} last {n.LastIndex} dropped {n.DroppedMessages}");
        }

        Assert.True(h[leader].Term > jumped);
        AssertCommitsEverywhere(h, leader, "b");

        var far = new Term(Math.Max(h[2].Term.Value, RaftNode.TermCeiling.Value) + RaftNode.TermJumpMax + 1);
        h[2].Step(new Message { Type = MessageType.Heartbeat, From = R(3), To = R(2), Term = far }, h.Now);
        Assert.True(h[2].Term < far);
        Assert.Equal(1, h[2].DroppedMessages);
    }

    [Fact]
    public void AnAppendFromAnotherReplicaThanTheKnownLeader_IsDropped()
    {
        var h = Running();
        var last = h[2].LastIndex;
        var forged = new Message
        {
            Type = MessageType.Append,
            From = R(3),
            To = R(2),
            Term = h[2].Term,
            Index = last,
            LogTerm = h[2].TermAt(last),
            Entries = [new Entry(last + 1, h[2].Term, EntryKind.Normal, Bytes("forged"))],
            Commit = last + 1,
        };
        h[2].Step(forged, h.Now);

        Assert.Equal(last, h[2].LastIndex);
        Assert.Equal(1, h[2].DroppedMessages);
        AssertCommitsEverywhere(h, 1, "real");
        Assert.Equal("real", RaftHarness.Text(h.Applied[2].Single(e => e.Index == last + 1)));
    }

    /// <summary>A forger speaking as the leader (replica 1) appends "forged" at <paramref name="last"/> + 1 on replica 2.</summary>
    private static void ForgeNextEntry(RaftHarness h, LogIndex last, Term term) =>
        h[2].Step(
            new Message
            {
                Type = MessageType.Append,
                From = R(1),
                To = R(2),
                Term = term,
                Index = last,
                LogTerm = h[2].TermAt(last),
                Entries = [new Entry(last + 1, term, EntryKind.Normal, Bytes("forged"))],
                Commit = h[2].CommitIndex,
            },
            h.Now
        );

    [Fact]
    public void AnEntryWithTheLeadersTermButOtherBytes_IsReplacedWhenTheLeaderSendsItsOwn()
    {
        // A forger speaking as the leader (replica 1) puts an entry of the leader's term into replica 2 where the
        // leader's next entry will go. Same index, same term, other bytes: Log Matching alone would let replica 2 keep
        // it and skip the real one (what happened on d9a8542). It must take the leader's.
        var h = Running();
        var last = h[2].LastIndex;
        var term = h[2].Term;
        ForgeNextEntry(h, last, term);
        h.ProcessAll();
        Assert.Equal(last + 1, h[2].LastIndex);

        AssertCommitsEverywhere(h, 1, "real");
        var texts = h.Applied.ToDictionary(p => p.Key, p => RaftHarness.Text(p.Value.Single(e => e.Index == last + 1)));
        output.WriteLine("index " + (last + 1) + ": " + string.Join(", ", texts.Select(p => p.Key + "=" + p.Value)));
        Assert.All(texts.Values, text => Assert.Equal("real", text));
    }

    [Fact]
    public void AForgedEntryTheFollowerAcknowledged_IsFoundAtThePreviousIndex_AndReplaced()
    {
        // Harder than the case above: replica 2 misses the leader's entry, a forger speaking as the leader puts its own
        // there (same index, same term), and replica 2 acknowledges it to the leader, who has that index: the leader
        // then sends the next entry with that one as the previous. Matched by term alone, replica 2 would keep the
        // forged entry for good and apply it. The previous entry's hash shows the difference; the leader resends.
        var h = Running();
        var last = h[2].LastIndex;
        var term = h[2].Term;
        h.Cut(1, 2);
        Assert.Equal(ProposeStatus.Ok, h.Propose(1, "real").Status);
        h.ProcessAll();
        Assert.Equal(last, h[2].LastIndex);
        h.Heal();
        ForgeNextEntry(h, last, term);
        h.ProcessAll(); // replica 2 acknowledges last + 1 to the leader, who holds that index

        AssertCommitsEverywhere(h, 1, "next");
        Assert.All(h.Applied, p => Assert.Equal("real", RaftHarness.Text(p.Value.Single(e => e.Index == last + 1))));
    }

    [Theory]
    [InlineData("gap")]
    [InlineData("terms go down")]
    [InlineData("term past the message's")]
    [InlineData("unknown kind")]
    [InlineData("bad configuration")]
    [InlineData("negative index")]
    public void AMalformedAppendFromTheLeader_IsDroppedAndCounted_NeverThrown(string defect)
    {
        var h = Running();
        var last = h[2].LastIndex;
        var term = h[2].Term;
        Entry E(long offset, Term t, EntryKind kind = EntryKind.Normal, string text = "x") => new(last + offset, t, kind, Bytes(text));
        IReadOnlyList<Entry> entries = defect switch
        {
            "gap" => [E(1, term), E(3, term)],
            "terms go down" => [E(1, term), E(2, new Term(term.Value - 1))],
            "term past the message's" => [E(1, term.Next)],
            "unknown kind" => [E(1, term, (EntryKind)9)],
            "bad configuration" => [E(1, term, EntryKind.Config, "not a configuration")],
            _ => [E(1, term)],
        };
        var message = new Message
        {
            Type = MessageType.Append,
            From = R(1),
            To = R(2),
            Term = term,
            Index = defect == "negative index" ? new LogIndex(-1) : last,
            LogTerm = h[2].TermAt(last),
            Entries = entries,
        };

        h[2].Step(message, h.Now);
        h.ProcessAll();

        Assert.Equal(last, h[2].LastIndex);
        Assert.Equal(1, h[2].DroppedMessages);
        output.WriteLine(defect + ": " + h[2].LastDropReason);
        AssertCommitsEverywhere(h, 1, "b");
    }

    [Fact]
    public void AnAcknowledgementBeyondTheLeadersLog_IsDropped()
    {
        var h = Running();
        var leaderLast = h[1].LastIndex;
        h[1].Step(new Message { Type = MessageType.AppendResponse, From = R(2), To = R(1), Term = h[1].Term, Index = leaderLast + 1_000 }, h.Now);
        h.ProcessAll();
        Assert.Equal(1, h[1].DroppedMessages);

        // Replica 2's real acknowledgements still count: with replica 3 cut off, commits need them.
        h.Isolate(3);
        AssertCommitsEverywhere(h, 1, "b", except: 3);
    }

    [Fact]
    public void AnEntryConflictingWithACommittedOne_ChangesNothing_AndIsNotAFatalError()
    {
        var h = Running();
        var committed = h[2].CommitIndex;
        var term = h[2].Term;
        var message = new Message
        {
            Type = MessageType.Append,
            From = R(1),
            To = R(2),
            Term = term,
            Index = committed - 1,
            LogTerm = h[2].TermAt(committed - 1),
            Entries = [new Entry(committed, term, EntryKind.Normal, Bytes("rewritten history"))],
        };

        h[2].Step(message, h.Now);
        h.ProcessAll();

        Assert.Equal(committed, h[2].LastIndex);
        AssertCommitsEverywhere(h, 1, "b");
        Assert.NotEqual("rewritten history", RaftHarness.Text(h.Applied[2].Single(e => e.Index == committed)));
    }
}
