using System.Reflection;
using FastSmr.Testing.Clusters;

namespace FastSmr.Tests;

/// <summary>
/// The programs these tests launch as child processes. The project compiles against neither: it references them only to
/// order the build (<c>ReferenceOutputAssembly="false"</c>) and records where each is built (the project file's
/// <c>AssemblyMetadata</c>), so a test runs the very <c>fastsmr</c> and simulator runner a user would.
/// </summary>
internal static class Programs
{
    /// <summary>Starts <c>fastsmr</c> through the <c>dotnet</c> host.</summary>
    public static ReplicaLauncher Fastsmr { get; } = ReplicaLauncher.Dll(Path("FastsmrProgram"));

    /// <summary>Starts the simulator runner through the <c>dotnet</c> host.</summary>
    public static ReplicaLauncher Simulator { get; } = ReplicaLauncher.Dll(Path("SimulatorProgram"));

    private static string Path(string key) =>
        System.IO.Path.GetFullPath(typeof(Programs).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value
            ?? throw new InvalidOperationException("no path recorded for " + key));
}
