namespace FastSmr.Simulation;

/// <summary>The simulator's only source of randomness: SplitMix64, seeded, so a seed replays exactly.</summary>
public sealed class SimRandom(ulong seed)
{
    private ulong state = seed;

    /// <summary>The next 64 random bits.</summary>
    public ulong Next()
    {
        var z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Uniform in [min, max).</summary>
    public long Between(long min, long max) => min + (long)(Next() % (ulong)(max - min));

    /// <summary>Uniform in [0, max).</summary>
    public int Below(int max) => (int)(Next() % (ulong)max);

    /// <summary>True with <paramref name="probability"/>.</summary>
    public bool Chance(double probability) => (Next() >> 11) * (1.0 / (1UL << 53)) < probability;

    /// <summary>Uniform in [0, 1).</summary>
    public double Unit() => (Next() >> 11) * (1.0 / (1UL << 53));
}
