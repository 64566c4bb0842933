using FastSmr.Testing.Fuzz;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// A short run of the fuzzer on every decoder that reads bytes from outside (the soak is
/// <c>fastsmr fuzz --inputs 1000000</c>; its figures are in perf-results/fuzz/).
/// </summary>
public class FuzzTests(ITestOutputHelper output)
{
    public static TheoryData<string> Targets => [.. FuzzTargets.All.Select(t => t.Name)];

    [Theory]
    [MemberData(nameof(Targets))]
    public void TwentyThousandMutatedInputs_CrashNothing(string name)
    {
        var target = FuzzTargets.All.Single(t => t.Name == name);
        foreach (var seed in target.Seeds)
        {
            target.Decode(seed); // the seeds themselves are valid: nothing is refused
        }

        var report = Fuzzer.Run(target, 20_000, seed: 20261205);
        output.WriteLine(report.Describe());
        Assert.Equal(0, report.CrashCount);
    }

    [Fact]
    public void Mutations_AreDeterministicForASeed_AndActuallyMutate()
    {
        var seeds = FuzzTargets.All[0].Seeds;
        List<byte[]> Hundred(int seed)
        {
            var random = new Random(seed);
            return [.. Enumerable.Range(0, 100).Select(_ => Fuzzer.Mutate(seeds, random))];
        }

        var first = Hundred(5);
        var again = Hundred(5);
        Assert.Equal(first, again);
        Assert.True(first.Count(m => !seeds.Any(s => s.AsSpan().SequenceEqual(m))) > 90, "most mutated inputs must differ from every seed");
    }
}
