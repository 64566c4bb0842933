using System.Reflection;
using System.Runtime.CompilerServices;

namespace FastSmr.Tests;

/// <summary>
/// One name, one concept: no two types in FastSmr's assemblies share a simple name, nested and private ones included, so a
/// name in a log line, a stack trace or a review always points to one place.
/// </summary>
public class NamingTests
{
    private static readonly Assembly[] Assemblies =
    [
        typeof(FastSmr.Term).Assembly,
        typeof(FastSmr.Core.Kv.KvStateMachine).Assembly,
        typeof(FastSmr.Verification.LinearizabilityChecker).Assembly,
        typeof(FastSmr.Log.SegmentedLog).Assembly,
        typeof(FastSmr.Raft.RaftNode).Assembly,
        typeof(FastSmr.Engine.ReplicaEngine).Assembly,
        typeof(FastSmr.DotNext.DotNextBackend).Assembly,
        typeof(FastSmr.Native.NativeBackend).Assembly,
        typeof(FastSmr.Client.FastSmrClient).Assembly,
        typeof(FastSmr.Server.ReplicaServer).Assembly,
        typeof(FastSmr.Testing.Names).Assembly,
    ];

    [Fact]
    public void NoTypeName_IsUsedTwiceAcrossTheAssemblies()
    {
        var byName = Assemblies
            .SelectMany(a => a.GetTypes())
            .Where(t => !t.IsDefined(typeof(CompilerGeneratedAttribute), inherit: false) && !t.Name.Contains('<', StringComparison.Ordinal))
            .Where(t => t.Namespace?.StartsWith("FastSmr", StringComparison.Ordinal) == true)
            .GroupBy(t => StripArity(t.Name))
            .Where(g => g.Count() > 1)
            .Select(g => g.Key + ": " + string.Join(", ", g.Select(t => t.FullName)))
            .ToList();
        Assert.True(byName.Count == 0, "type names used twice:\n" + string.Join('\n', byName));
    }

    [Fact]
    public void NoNamespaceSegment_IsAlsoATypeName()
    {
        // "Log" as a namespace and as a class, "Native" as a namespace and as a class: each read as the other.
        var segments = Assemblies.SelectMany(a => a.GetTypes()).Select(t => t.Namespace ?? "").SelectMany(n => n.Split('.')).ToHashSet(StringComparer.Ordinal);
        var clashes = Assemblies.SelectMany(a => a.GetTypes()).Where(t => segments.Contains(StripArity(t.Name))).Select(t => t.FullName).ToList();
        Assert.True(clashes.Count == 0, "types named like a namespace: " + string.Join(", ", clashes));
    }

    private static string StripArity(string name) => name.Split('`')[0];
}
