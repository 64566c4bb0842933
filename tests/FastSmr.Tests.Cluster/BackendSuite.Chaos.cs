using System.Text.Json;
using FastSmr.Testing;

namespace FastSmr.Tests;

/// <summary>The suite's bounded chaos runs: <c>fastsmr chaos</c> as a process on fixed seeds must PASS.</summary>
public abstract partial class BackendSuite
{
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public async Task Chaos_PassesOnFixedSeeds(int seed)
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-chaos-test-").FullName;
        try
        {
            var (exit, text) = await FastsmrProcess.RunAsync(output, TimeSpan.FromMinutes(3), "chaos", "--seconds", "30", "--seed", seed.ToString(System.Globalization.CultureInfo.InvariantCulture), "--backend", Names.Of(Backend), "--out", directory);
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
}
