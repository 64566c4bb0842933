using System.Xml.Linq;

namespace FastSmr.Tests;

/// <summary>
/// The layers' dependencies point one way (docs/architecture.md, "Layers"); this keeps them from rotting silently. It reads
/// every project file under src/, tests/ and bench/.
/// </summary>
public class LayeringTests
{
    [Theory]
    [InlineData("src", "FastSmr.Primitives", new string[0])]
    [InlineData("src", "FastSmr.Core", new[] { "FastSmr.Primitives" })]
    [InlineData("src", "FastSmr.Security", new[] { "FastSmr.Primitives" })]
    [InlineData("src", "FastSmr.Verification", new string[0])]
    [InlineData("src", "FastSmr.Log", new[] { "FastSmr.Primitives" })]
    [InlineData("src", "FastSmr.Raft", new[] { "FastSmr.Primitives" })]
    [InlineData("src", "FastSmr.Engine", new[] { "FastSmr.Core", "FastSmr.Security" })]
    [InlineData("src", "FastSmr.DotNext", new[] { "FastSmr.Engine" })]
    [InlineData("src", "FastSmr.Client", new[] { "FastSmr.Core", "FastSmr.Security" })]
    [InlineData("src", "FastSmr.Native", new[] { "FastSmr.Engine", "FastSmr.Log", "FastSmr.Raft" })]
    [InlineData("src", "FastSmr.Server", new[] { "FastSmr.DotNext", "FastSmr.Engine", "FastSmr.Log", "FastSmr.Native" })]
    [InlineData("src", "FastSmr.Testing", new[] { "FastSmr.Client", "FastSmr.Log", "FastSmr.Server", "FastSmr.Verification" })]
    [InlineData("src", "FastSmr.Cli", new[] { "FastSmr.Log", "FastSmr.Server", "FastSmr.Testing", "FastSmr.Verification" })]
    [InlineData("tests", "FastSmr.Simulation", new[] { "FastSmr.Engine", "FastSmr.Native", "FastSmr.Raft", "FastSmr.Verification" })]
    [InlineData("tests", "FastSmr.Simulation.Runner", new[] { "FastSmr.Simulation" })]
    [InlineData("bench", "FastSmr.Bench", new[] { "FastSmr.Core", "FastSmr.Log", "FastSmr.Raft", "FastSmr.Security" })]
    public void Project_ReferencesOnlyTheLayersBelowIt(string folder, string project, string[] expected)
    {
        var path = Path.Combine(Repository.Root, folder, project, project + ".csproj");
        var references = ProjectReferences(path).Select(r => r.Name).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(expected, references);
    }

    [Fact]
    public void EveryProject_IsCoveredByTheLayeringRules()
    {
        var covered = new[]
        {
            "FastSmr.Primitives", "FastSmr.Core", "FastSmr.Security", "FastSmr.Verification", "FastSmr.Log", "FastSmr.Raft", "FastSmr.Engine", "FastSmr.DotNext", "FastSmr.Client",
            "FastSmr.Native", "FastSmr.Server", "FastSmr.Testing", "FastSmr.Cli", "FastSmr.Simulation", "FastSmr.Simulation.Runner", "FastSmr.Bench",
            "FastSmr.Tests.Fast", "FastSmr.Tests.Cluster",
        };
        Assert.Equal(covered.Order(StringComparer.Ordinal), ProjectFiles().Select(Path.GetFileNameWithoutExtension).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void EveryProject_IsInTheSolution()
    {
        // A project missing from FastSmr.sln is still built through references, but in its default configuration:
        // FastSmr.Primitives was once built Debug (unoptimised) into every Release build that way.
        var solution = File.ReadAllText(Path.Combine(Repository.Root, "FastSmr.sln"));
        foreach (var project in ProjectFiles())
        {
            var relative = Path.GetRelativePath(Repository.Root, project).Replace('/', '\\');
            Assert.True(solution.Contains("\"" + relative + "\"", StringComparison.Ordinal), relative + " is not in FastSmr.sln");
        }
    }

    [Fact]
    public void NoProject_CompilesAgainstAnExecutable()
    {
        // Tests launch fastsmr and the simulator runner as processes; a reference may only order the build.
        foreach (var project in ProjectFiles())
        {
            foreach (var reference in ProjectReferences(project).Where(r => IsExecutable(r.Path)))
            {
                Assert.True(reference.BuildOrderOnly, Path.GetFileName(project) + " compiles against the executable " + reference.Name + " (set ReferenceOutputAssembly=\"false\")");
            }
        }
    }

    [Fact]
    public void FastTests_StartNoCluster()
    {
        // The inner loop stays fast: no process cluster, no executable, no simulator.
        var path = Path.Combine(Repository.Root, "tests", "FastSmr.Tests.Fast", "FastSmr.Tests.Fast.csproj");
        var references = ProjectReferences(path).Select(r => r.Name).ToArray();
        Assert.DoesNotContain("FastSmr.Cli", references);
        Assert.DoesNotContain("FastSmr.Simulation", references);
        Assert.DoesNotContain("FastSmr.DotNext", references);
    }

    [Fact]
    public void DotNextCluster_IsUsedOnlyByTheDotNextBackEnd_AndTheBaselineBenchmarks()
    {
        // The stock library stays behind its adapter; the benchmarks measure it directly as the baseline of every figure.
        var users = ProjectFiles()
            .Where(p => PackageReferences(p).Contains("DotNext.Net.Cluster"))
            .Select(Path.GetFileNameWithoutExtension)
            .Order(StringComparer.Ordinal);
        Assert.Equal(new[] { "FastSmr.Bench", "FastSmr.DotNext" }, users);
    }

    [Fact]
    public void Core_HasNoPackageThatDoesIo()
    {
        var path = Path.Combine(Repository.Root, "src", "FastSmr.Core", "FastSmr.Core.csproj");
        Assert.Equal(new[] { "System.IO.Hashing" }, PackageReferences(path));
    }

    [Fact]
    public void Versions_ArePinnedCentrally_AndNowhereElse()
    {
        foreach (var file in ProjectFiles())
        {
            foreach (var reference in XDocument.Load(file).Descendants("PackageReference"))
            {
                Assert.Null(reference.Attribute("Version"));
            }
        }

        var pinned = XDocument.Load(Path.Combine(Repository.Root, "Directory.Packages.props")).Descendants("PackageVersion").ToDictionary(e => e.Attribute("Include")!.Value, e => e.Attribute("Version")!.Value);
        Assert.Equal("6.12.0", pinned["DotNext.Net.Cluster"]);
    }

    private static IEnumerable<string> ProjectFiles() =>
        new[] { "src", "tests", "bench" }.SelectMany(folder => Directory.EnumerateFiles(Path.Combine(Repository.Root, folder), "*.csproj", SearchOption.AllDirectories))
            .Where(f => !f.Contains("/obj/", StringComparison.Ordinal) && !f.Contains("/bin/", StringComparison.Ordinal));

    private static IEnumerable<(string Name, string Path, bool BuildOrderOnly)> ProjectReferences(string project) =>
        XDocument.Load(project).Descendants("ProjectReference").Select(e =>
        {
            var include = e.Attribute("Include")!.Value;
            var full = Path.GetFullPath(Path.Combine(Path.GetDirectoryName(project)!, include));
            return (Path.GetFileNameWithoutExtension(include), full, string.Equals(e.Attribute("ReferenceOutputAssembly")?.Value, "false", StringComparison.OrdinalIgnoreCase));
        });

    private static string[] PackageReferences(string project) =>
        XDocument.Load(project).Descendants("PackageReference").Select(e => e.Attribute("Include")!.Value).ToArray();

    private static bool IsExecutable(string project) =>
        XDocument.Load(project).Descendants("OutputType").Any(e => string.Equals(e.Value, "Exe", StringComparison.OrdinalIgnoreCase))
        || XDocument.Load(project).Descendants("IsTestProject").Any(e => e.Value == "true");
}
