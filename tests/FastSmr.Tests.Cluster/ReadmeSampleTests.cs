using FastSmr.Testing.Clusters;
using FastSmr.Core.Kv;

namespace FastSmr.Tests;

[Collection(ClusterCollection.Name)]
public class ReadmeSampleTests
{
    private static string Between(string text, string begin, string end)
    {
        var start = text.IndexOf(begin, StringComparison.Ordinal);
        var stop = text.IndexOf(end, StringComparison.Ordinal);
        Assert.True(start >= 0 && stop > start, $"markers {begin} / {end} not found");
        return text[(start + begin.Length)..stop].Trim().ReplaceLineEndings("\n");
    }

    [Fact]
    public void Readme_ShowsExactlyTheCompiledSample()
    {
        var sample = Between(File.ReadAllText(Path.Combine(Repository.Root, "tests", "FastSmr.Tests.Cluster", "ReadmeSample.cs")), "// README-SAMPLE-BEGIN", "// README-SAMPLE-END");
        var readme = File.ReadAllText(Path.Combine(Repository.Root, "README.md"));
        var shown = Between(readme, "<!-- README-SAMPLE-BEGIN -->", "<!-- README-SAMPLE-END -->");
        Assert.Equal("```csharp\n" + sample + "\n```", shown);
    }

    [Fact]
    public async Task Sample_RunsAgainstASingleReplicaCluster()
    {
        var directory = Path.Combine(Path.GetTempPath(), "fastsmr-sample-" + Guid.NewGuid().ToString("N")[..8]);
        try
        {
            var members = $"1=127.0.0.1:{FreePorts.Next()}/127.0.0.1:{FreePorts.Next()}";
            var certificates = ClusterCertificates.Create(Path.Combine(directory, "certs"), members: 1);
            var output = await EmbeddingSample.PutThenGetAsync(1, members, Path.Combine(directory, "data"), certificates);
            Assert.Equal(KvResult.Ok, (KvResult)output[0]);
            Assert.Equal("hello", System.Text.Encoding.UTF8.GetString(output.AsSpan(1)));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
