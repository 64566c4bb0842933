namespace FastSmr.Simulation;

/// <summary>
/// A machine's clock: it runs at <see cref="Rate"/> of the world's time (1 ± drift) from an offset, and survives the
/// crashes of the processes on that machine. Local microseconds are what the processes read.
/// </summary>
public sealed class SimClock(SimWorld world, long offsetUs, double rate)
{
    private long baseWorldUs;
    private long baseLocalUs = offsetUs;

    /// <summary>Local microseconds per world microsecond.</summary>
    public double Rate { get; private set; } = rate;

    /// <summary>The world this clock runs in.</summary>
    public SimWorld World { get; } = world;

    /// <summary>Now, in this machine's microseconds.</summary>
    public long NowUs => baseLocalUs + (long)((World.NowUs - baseWorldUs) * Rate);

    /// <summary>Changes the rate from now on (a drift fault), keeping the clock continuous.</summary>
    public void SetRate(double rate)
    {
        baseLocalUs = NowUs;
        baseWorldUs = World.NowUs;
        Rate = rate;
    }

    /// <summary>The world time at which this clock reads <paramref name="localUs"/> (now if it already has).</summary>
    public long WorldTimeAt(long localUs) =>
        localUs <= NowUs ? World.NowUs : World.NowUs + (long)Math.Ceiling((localUs - NowUs) / Rate);
}

/// <summary>
/// A process's <see cref="TimeProvider"/> on its machine's <see cref="SimClock"/>: timestamps in microseconds, and timers
/// that fire as world events (on the world's thread), dead with the process.
/// </summary>
public sealed class SimTime(SimClock clock, SimProcess owner) : TimeProvider
{
    private static readonly DateTimeOffset Epoch = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <inheritdoc />
    public override long TimestampFrequency => 1_000_000;

    /// <inheritdoc />
    public override long GetTimestamp() => clock.NowUs;

    /// <inheritdoc />
    public override DateTimeOffset GetUtcNow() => Epoch.AddTicks(clock.NowUs * 10);

    /// <inheritdoc />
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        var timer = new SimTimer(clock, owner, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    private sealed class SimTimer(SimClock clock, SimProcess owner, TimerCallback callback, object? state) : ITimer
    {
        private long version;
        private long periodUs;

        public bool Change(TimeSpan dueTime, TimeSpan period)
        {
            var armed = ++version;
            periodUs = period == Timeout.InfiniteTimeSpan ? -1 : Math.Max(1, (long)period.TotalMicroseconds);
            if (dueTime != Timeout.InfiniteTimeSpan)
            {
                Arm(armed, clock.NowUs + Math.Max(0, (long)dueTime.TotalMicroseconds));
            }

            return true;
        }

        private void Arm(long armed, long localUs) =>
            clock.World.At(clock.WorldTimeAt(localUs), owner, "timer", () =>
            {
                if (armed != version)
                {
                    return; // changed or disposed since
                }

                if (periodUs > 0)
                {
                    Arm(armed, clock.NowUs + periodUs);
                }

                callback(state);
            });

        public void Dispose() => version++;

        public ValueTask DisposeAsync()
        {
            Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
