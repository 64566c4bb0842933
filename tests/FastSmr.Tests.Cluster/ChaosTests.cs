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
