using System.Text.RegularExpressions;

namespace FastSmr.Tests;

/// <summary>
/// The documentation a newcomer reads first stays true: every file docs/architecture.md's "Where things are" table points
/// to exists, it names the places the README promises, and nothing in the repository points to design documents outside
/// it.
/// </summary>
public partial class DocsTests
{
    [Fact]
    public void WhereThingsAre_EveryPathExists()
    {
        var rows = WhereThingsAre();
        Assert.True(rows.Count >= 30, "the table lost rows: " + rows.Count);
        var missing = rows.Where(r => !File.Exists(Path.Combine(Repository.Root, r.Path)) && !Directory.Exists(Path.Combine(Repository.Root, r.Path))).ToList();
        Assert.True(missing.Count == 0, "paths that do not exist: " + string.Join(", ", missing.Select(r => r.Path)));
    }

    [Theory]
    [InlineData("the batching rule", "src/FastSmr.Engine/ReplicaEngine.GroupCommit.cs")]
    [InlineData("the lease", "src/FastSmr.Raft/RaftNode.Lease.cs")]
    [InlineData("the segment format", "src/FastSmr.Log/SegmentHeader.cs")]
    [InlineData("the chaos nemesis", "src/FastSmr.Testing/Chaos/ChaosNemesis.cs")]
    public void WhereThingsAre_NamesTheFileToOpen(string concern, string path)
    {
        Assert.Contains(WhereThingsAre(), r => r.Concern.StartsWith(concern, StringComparison.Ordinal) && r.Path == path);
    }

    [Fact]
    public void NothingPointsOutsideTheRepository()
    {
        // The design lives in docs/; a link to ../shared/ or to a DESIGN.md that is not here helps no one who clones it.
        var offenders = new List<string>();
        foreach (var file in Directory.EnumerateFiles(Repository.Root, "*", SearchOption.AllDirectories))
        {
            if (file.Contains("/.git/", StringComparison.Ordinal) || file.Contains("/obj/", StringComparison.Ordinal) || file.Contains("/bin/", StringComparison.Ordinal)
                || !(file.EndsWith(".md", StringComparison.Ordinal) || file.EndsWith(".cs", StringComparison.Ordinal) || file.EndsWith(".sh", StringComparison.Ordinal)))
            {
                continue;
            }

            var text = File.ReadAllText(file);
            if (OutsideReference().IsMatch(text) && !file.EndsWith(nameof(DocsTests) + ".cs", StringComparison.Ordinal))
            {
                offenders.Add(Path.GetRelativePath(Repository.Root, file));
            }
        }

        Assert.True(offenders.Count == 0, "files that point outside the repository: " + string.Join(", ", offenders));
    }

    private static List<(string Concern, string Path)> WhereThingsAre()
    {
        var text = File.ReadAllText(Path.Combine(Repository.Root, "docs", "architecture.md"));
        var start = text.IndexOf("## Where things are", StringComparison.Ordinal);
        Assert.True(start >= 0, "docs/architecture.md has no \"Where things are\" section");
        var rows = new List<(string, string)>();
        foreach (var line in text[start..].Split('\n').Skip(1))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                break;
            }

            var match = Row().Match(line);
            if (match.Success)
            {
                rows.Add((match.Groups[1].Value.Trim(), match.Groups[2].Value.TrimEnd('/')));
            }
        }

        return rows;
    }

    [GeneratedRegex(@"^\|([^|]+)\|\s*`([^`]+)`")]
    private static partial Regex Row();

    [GeneratedRegex(@"\.\./shared/|DESIGN\.md")]
    private static partial Regex OutsideReference();
}
