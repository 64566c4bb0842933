namespace FastSmr.Engine;

/// <summary>
/// At most <c>perSecond</c> log lines of one kind per second: a flood of refused connections or bad frames must not
/// become a flood of log lines (disk and CPU are resources too). Lines over the budget are counted, and the count is
/// handed to the next line allowed, which reports it. Thread-safe.
/// </summary>
public sealed class LogBudget
{
    /// <summary>The budget of the warnings about refused peers and about clients (their messages say so).</summary>
    public const int WarningsPerSecond = 20;

    private readonly int perSecond;
    private readonly TimeProvider time;
    private readonly Lock gate = new();
    private long windowStart;
    private int used;
    private long suppressed;

    /// <summary>Creates a budget of <paramref name="perSecond"/> lines per second on <paramref name="time"/>.</summary>
    public LogBudget(int perSecond, TimeProvider? time = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(perSecond, 1);
        this.perSecond = perSecond;
        this.time = time ?? TimeProvider.System;
        windowStart = this.time.GetTimestamp();
    }

    /// <summary>
    /// Whether a line may be logged now; when it may, <paramref name="skipped"/> is how many were not logged since the
    /// last line that was (to be reported with it).
    /// </summary>
    public bool TryTake(out long skipped)
    {
        lock (gate)
        {
            var now = time.GetTimestamp();
            if (time.GetElapsedTime(windowStart, now) >= TimeSpan.FromSeconds(1))
            {
                windowStart = now;
                used = 0;
            }

            if (used >= perSecond)
            {
                suppressed++;
                skipped = 0;
                return false;
            }

            used++;
            skipped = suppressed;
            suppressed = 0;
            return true;
        }
    }
}
