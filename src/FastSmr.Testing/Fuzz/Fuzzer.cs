using System.Buffers.Binary;
using System.Diagnostics;

namespace FastSmr.Testing.Fuzz;

/// <summary>
/// A structure-aware mutation fuzzer: each input is a valid encoding of the target's format with one to four
/// mutations (bit flips, interesting bytes, length fields overwritten with boundary values, truncation, growth,
/// duplicated chunks, splices of two seeds). Deterministic for a seed. In-process, so it runs millions of inputs a
/// minute on the decoders, which are pure; coverage-guided fuzzing (SharpFuzz with AFL++ or libFuzzer) would find
/// deeper paths but needs an instrumented build (see native-notes/security.md).
/// </summary>
public static class Fuzzer
{
    /// <summary>How many crashing inputs a report keeps (all are counted).</summary>
    public const int CrashesKept = 10;

    private static readonly int[] InterestingInts = [0, 1, -1, 4, 255, 256, 65_535, 65_536, int.MaxValue, int.MinValue, 1 << 20, 1 << 26];

    /// <summary>Runs <paramref name="inputs"/> mutated inputs through <paramref name="target"/>.</summary>
    public static FuzzReport Run(FuzzTarget target, long inputs, ulong seed, Action<long>? progress = null)
    {
        ArgumentNullException.ThrowIfNull(target);
        var random = new Random(unchecked((int)seed ^ target.Name.Length));
        var crashes = new List<(byte[], string)>();
        long refused = 0,
            crashCount = 0,
            slowestTicks = 0;
        var watch = Stopwatch.StartNew();
        for (long i = 0; i < inputs; i++)
        {
            var input = Mutate(target.Seeds, random);
            var started = Stopwatch.GetTimestamp();
            try
            {
                target.Decode(input);
            }
#pragma warning disable CA1031 // Anything but the target's refusal is what the fuzzer looks for.
            catch (Exception e)
#pragma warning restore CA1031
            {
                if (target.Refusal(e))
                {
                    refused++;
                }
                else
                {
                    crashCount++;
                    if (crashes.Count < CrashesKept)
                    {
                        crashes.Add((input, e.GetType().Name + ": " + e.Message));
                    }
                }
            }

            slowestTicks = Math.Max(slowestTicks, Stopwatch.GetTimestamp() - started);
            if (progress is not null && (i + 1) % 100_000 == 0)
            {
                progress(i + 1);
            }
        }

        return new FuzzReport(
            target.Name,
            inputs,
            refused,
            crashes,
            (long)(slowestTicks * 1_000_000.0 / Stopwatch.Frequency),
            watch.Elapsed.TotalSeconds,
            Process.GetCurrentProcess().PeakWorkingSet64
        )
        {
            CrashCount = crashCount,
        };
    }

    /// <summary>One seed with one to four mutations.</summary>
    public static byte[] Mutate(IReadOnlyList<byte[]> seeds, Random random)
    {
        ArgumentNullException.ThrowIfNull(seeds);
        ArgumentNullException.ThrowIfNull(random);
        var bytes = new List<byte>(seeds[random.Next(seeds.Count)]);
        var count = random.Next(1, 5);
        for (var m = 0; m < count; m++)
        {
            MutateOnce(bytes, seeds, random);
        }

        return [.. bytes];
    }

    private static void MutateOnce(List<byte> bytes, IReadOnlyList<byte[]> seeds, Random random)
    {
        var at = bytes.Count == 0 ? 0 : random.Next(bytes.Count);
        switch (random.Next(8))
        {
            case 0 when bytes.Count > 0:
                bytes[at] ^= (byte)(1 << random.Next(8));
                break;
            case 1 when bytes.Count > 0:
                bytes[at] = (byte)(
                    random.Next(4) switch
                    {
                        0 => 0,
                        1 => 0xFF,
                        2 => 0x7F,
                        _ => 0x80,
                    }
                );
                break;
            case 2 when bytes.Count >= 4:
                var position = random.Next(bytes.Count - 3);
                Span<byte> value = stackalloc byte[4];
                BinaryPrimitives.WriteInt32LittleEndian(value, InterestingInts[random.Next(InterestingInts.Length)] + random.Next(-1, 2));
                for (var k = 0; k < 4; k++)
                {
                    bytes[position + k] = value[k];
                }

                break;
            case 3 when bytes.Count > 0:
                bytes.RemoveRange(at, bytes.Count - at); // truncate
                break;
            case 4:
                for (var k = random.Next(1, 32); k > 0; k--)
                {
                    bytes.Insert(at, (byte)random.Next(256));
                }

                break;
            case 5 when bytes.Count > 1:
                var length = random.Next(1, Math.Min(64, bytes.Count - at) + 1);
                bytes.InsertRange(at, bytes.GetRange(at, length));
                break;
            case 6:
                var other = seeds[random.Next(seeds.Count)];
                var from = random.Next(other.Length + 1);
                bytes.RemoveRange(at, bytes.Count - at);
                bytes.AddRange(other.AsSpan(from).ToArray()); // splice
                break;
            default:
                if (bytes.Count > 0)
                {
                    bytes[at] = (byte)random.Next(256);
                }

                break;
        }
    }
}
