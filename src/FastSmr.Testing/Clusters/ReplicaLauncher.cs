using System.Diagnostics;

namespace FastSmr.Testing.Clusters;

/// <summary>How to start the <c>fastsmr</c> program that a <see cref="ProcessCluster"/> runs each replica with.</summary>
/// <param name="Executable">The program to execute (an apphost, or the <c>dotnet</c> host).</param>
/// <param name="Arguments">The leading arguments (the path of <c>fastsmr.dll</c> when run through the host).</param>
public sealed record ReplicaLauncher(string Executable, IReadOnlyList<string> Arguments)
{
    /// <summary>Runs this very program again: the apphost directly, or <c>dotnet program.dll</c> when started through the host.</summary>
    public static ReplicaLauncher CurrentProgram()
    {
        var processPath = Environment.ProcessPath ?? throw new InvalidOperationException("unknown process path");
        var entry = System.Reflection.Assembly.GetEntryAssembly()?.Location ?? throw new InvalidOperationException("no entry assembly");
        return Path.GetFileNameWithoutExtension(processPath).Equals("dotnet", StringComparison.OrdinalIgnoreCase)
            ? new ReplicaLauncher(processPath, [entry])
            : new ReplicaLauncher(processPath, []);
    }

    /// <summary>Runs a framework-dependent program (<c>fastsmr.dll</c>) through the <c>dotnet</c> host.</summary>
    /// <param name="dll">The program's main assembly; it must exist.</param>
    public static ReplicaLauncher Dll(string dll)
    {
        if (!File.Exists(dll))
        {
            throw new FileNotFoundException("the program to launch replicas with was not built: " + dll, dll);
        }

        return new ReplicaLauncher(Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") ?? "dotnet", [dll]);
    }

    /// <summary>How to start the program with <paramref name="arguments"/> after the leading ones, its output redirected.</summary>
    public ProcessStartInfo StartInfo(IEnumerable<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        var info = new ProcessStartInfo(Executable)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        foreach (var argument in Arguments.Concat(arguments))
        {
            info.ArgumentList.Add(argument);
        }

        return info;
    }
}
