using System.Xml.Linq;

namespace FastSmr.Tests;

/// <summary>The layers' dependencies point one way (DESIGN.md, "Layers"); this keeps them from rotting silently.</summary>
public class LayeringTests
{
    private static string RepositoryRoot()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "FastSmr.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("FastSmr.sln not found above " + AppContext.BaseDirectory);
    }

    private static string[] References(string project)
    {
        var path = Path.Combine(RepositoryRoot(), "src", project, project + ".csproj");
        return XDocument.Load(path).Descendants("ProjectReference")
            .Select(e => Path.GetFileNameWithoutExtension(e.Attribute("Include")!.Value))
            .OrderBy(n => n, StringComparer.Ordinal)
            .ToArray();
    }

    [Theory]
    [InlineData("FastSmr.Core", new string[0])]
    [InlineData("FastSmr.Verification", new string[0])]
    [InlineData("FastSmr.Chaos", new string[0])]
    [InlineData("FastSmr.Log", new string[0])]
    [InlineData("FastSmr.Raft", new string[0])]
    [InlineData("FastSmr.Engine", new[] { "FastSmr.Core" })]
    [InlineData("FastSmr.DotNext", new[] { "FastSmr.Engine" })]
    [InlineData("FastSmr.Client", new[] { "FastSmr.Core" })]
    [InlineData("FastSmr.Native", new[] { "FastSmr.Engine", "FastSmr.Log", "FastSmr.Raft" })]
    [InlineData("FastSmr.Server", new[] { "FastSmr.DotNext", "FastSmr.Engine", "FastSmr.Native" })]
    [InlineData("FastSmr.Cli", new[] { "FastSmr.Chaos", "FastSmr.Client", "FastSmr.Log", "FastSmr.Server", "FastSmr.Verification" })]
    public void Project_ReferencesOnlyTheLayersBelowIt(string project, string[] expected)
    {
        Assert.Equal(expected, References(project));
    }

    [Fact]
    public void Core_HasNoPackageThatDoesIo()
    {
        var path = Path.Combine(RepositoryRoot(), "src", "FastSmr.Core", "FastSmr.Core.csproj");
        var packages = XDocument.Load(path).Descendants("PackageReference").Select(e => e.Attribute("Include")!.Value).ToArray();
        Assert.Equal(new[] { "System.IO.Hashing" }, packages);
    }

    [Fact]
    public void Versions_ArePinnedCentrally_AndNowhereElse()
    {
        var root = RepositoryRoot();
        foreach (var file in Directory.EnumerateFiles(root, "*.csproj", SearchOption.AllDirectories).Where(f => !f.Contains("/obj/", StringComparison.Ordinal)))
        {
            foreach (var reference in XDocument.Load(file).Descendants("PackageReference"))
            {
                Assert.Null(reference.Attribute("Version"));
            }
        }

        var pinned = XDocument.Load(Path.Combine(root, "Directory.Packages.props")).Descendants("PackageVersion").ToDictionary(e => e.Attribute("Include")!.Value, e => e.Attribute("Version")!.Value);
        Assert.Equal("6.12.0", pinned["DotNext.Net.Cluster"]);
    }
}
