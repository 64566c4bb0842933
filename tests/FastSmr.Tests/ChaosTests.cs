using System.Text.Json;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// The bounded chaos run of CI: <c>fastsmr chaos</c> as a process on fixed seeds must PASS, and the same harness must
/// FAIL when every replica injects a bug. The long soak is a documented command (README, "Chaos").
/// </summary>
[Collection(ClusterCollection.Name)]
public class ChaosTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(11, "dotnext")]
    [InlineData(12, "dotnext")]
    [InlineData(11, "native")]
    [InlineData(12, "native")]
    public async Task Chaos_PassesOnFixedSeeds(int seed, string backend)
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-chaos-test-").FullName;
        try
        {
            var (exit, text) = await FastsmrProcess.RunAsync(output, TimeSpan.FromMinutes(3), "chaos", "--seconds", "30", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--backend", backend, "--out", directory);
            var verdict = text.Split('\n').Last(l => l.StartsWith("chaos: ", StringComparison.Ordinal) && (l.Contains("PASS", StringComparison.Ordinal) || l.Contains("FAIL", StringComparison.Ordinal)));
            Assert.StartsWith("chaos: PASS seed=" + seed.ToString(System.Globalization.CultureInfo.InvariantCulture), verdict, StringComparison.Ordinal);
            Assert.Equal(0, exit);

            // The report must show the run tested something: faults injected, operations acknowledged, a real check.
            using var report = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(directory, "report.json")));
            var root = report.RootElement;
            Assert.Equal("PASS", root.GetProperty("verdict").GetString());
            Assert.True(root.GetProperty("faults").EnumerateObject().Sum(p => p.Value.GetInt32()) >= 3);
            Assert.True(root.GetProperty("operations").GetProperty("ok").GetInt64() > 1_000);
            Assert.Equal("Linearizable", root.GetProperty("check").GetProperty("verdict").GetString());
            Assert.True(root.GetProperty("setWrites").GetProperty("acknowledged").GetInt32() > 100);
            Assert.True(File.Exists(Path.Combine(directory, "history.jsonl")));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Chaos_FailsWhenReplicasAcknowledgeWithoutAppending()
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-chaos-test-").FullName;
        try
        {
            var (exit, text) = await FastsmrProcess.RunAsync(output, TimeSpan.FromMinutes(3), "chaos", "--seconds", "15", "--seed", "11", "--out", directory, "--inject-bug", "ack-without-append");
            var verdict = text.Split('\n').Last(l => l.StartsWith("chaos: FAIL", StringComparison.Ordinal) || l.StartsWith("chaos: PASS", StringComparison.Ordinal));
            Assert.StartsWith("chaos: FAIL seed=11", verdict, StringComparison.Ordinal);
            Assert.Equal(1, exit);

            // It must fail for the right reason: the lost writes, seen both by the read-back and by the checker.
            Assert.Contains("acknowledged writes are missing", verdict, StringComparison.Ordinal);
            Assert.Contains("not linearizable", verdict, StringComparison.Ordinal);
            Assert.Contains("no linearization for key", await File.ReadAllTextAsync(Path.Combine(directory, "check.txt")), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
