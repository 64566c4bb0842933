using FastSmr.Raft;

namespace FastSmr.Tests.Raft;

/// <summary>The leader's view of one follower when the follower's answers contradict what it acknowledged.</summary>
public class ProgressTests
{
    [Fact]
    public void AFollowerThatLostWhatItAcknowledged_IsProbedFromWhatItHolds()
    {
        // A follower acknowledged up to 100, then its disk was wiped and it rejoined empty in the same term: it refuses
        // the probe after 100 and says its log ends at 0. Probing after 100 again would be refused forever (decision 99).
        var progress = new Progress(new LogIndex(1));
        Assert.True(progress.Acknowledged(new LogIndex(100)));
        progress.BecomeProbe();
        Assert.True(progress.Rejected(new LogIndex(100), new LogIndex(0)));
        Assert.Equal(new LogIndex(0), progress.Match);
        Assert.Equal(new LogIndex(1), progress.Next);
    }

    [Fact]
    public void ARejectionOfAnOlderProbe_ChangesNothing()
    {
        var progress = new Progress(new LogIndex(1));
        Assert.True(progress.Acknowledged(new LogIndex(100)));
        progress.BecomeProbe();
        Assert.False(progress.Rejected(new LogIndex(40), new LogIndex(0))); // answers a probe sent before the acknowledgement
        Assert.Equal(new LogIndex(100), progress.Match);
        Assert.Equal(new LogIndex(101), progress.Next);
    }
}
