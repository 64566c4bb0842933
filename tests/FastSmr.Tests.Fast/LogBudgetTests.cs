using FastSmr.Engine;

namespace FastSmr.Tests;

/// <summary>A flood of refusals becomes a bounded number of log lines, and nothing refused goes uncounted.</summary>
public class LogBudgetTests
{
    /// <summary>A clock that moves only when told to.</summary>
    private sealed class StepClock : TimeProvider
    {
        public long Ticks { get; set; } = 1_000;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Ticks;
    }

    [Fact]
    public void AtMostTheBudgetPerSecond_AndTheRestAreCountedIntoTheNextLine()
    {
        var clock = new StepClock();
        var budget = new LogBudget(20, clock);
        var logged = 0;
        long skippedTotal = 0;
        for (var i = 0; i < 1_000; i++)
        {
            if (budget.TryTake(out var skipped))
            {
                logged++;
                skippedTotal += skipped;
            }
        }

        Assert.Equal(20, logged);
        Assert.Equal(0, skippedTotal); // not reported yet: no line was allowed since

        clock.Ticks += TimeSpan.TicksPerSecond;
        Assert.True(budget.TryTake(out var reported));
        Assert.Equal(980, reported);
        Assert.True(budget.TryTake(out var none));
        Assert.Equal(0, none);
    }

    [Fact]
    public void ABudgetBelowOne_IsRefused() => Assert.Throws<ArgumentOutOfRangeException>(() => new LogBudget(0));
}
