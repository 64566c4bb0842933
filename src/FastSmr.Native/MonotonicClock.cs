namespace FastSmr.Native;

/// <summary>
/// The back-end's one clock: microseconds on the monotonic timestamps of the options' <see cref="TimeProvider"/>
/// (the system's by default), read by the ticker, the lease, the peer transport and Stop's deadline alike, so a simulation
/// can drive all of them.
/// </summary>
internal sealed class MonotonicClock(TimeProvider time)
{
    private readonly double microsecondsPerTick = 1_000_000.0 / time.TimestampFrequency;

    /// <summary>Now, in microseconds since an arbitrary origin.</summary>
    public long NowUs() => (long)(time.GetTimestamp() * microsecondsPerTick);

    /// <summary>Microseconds elapsed since <paramref name="sinceUs"/> (a value of <see cref="NowUs"/>).</summary>
    public long ElapsedUs(long sinceUs) => NowUs() - sinceUs;
}
