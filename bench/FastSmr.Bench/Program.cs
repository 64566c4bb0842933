using BenchmarkDotNet.Running;

namespace FastSmr.Bench;

/// <summary>Component benchmarks (BenchmarkDotNet). Cluster figures come from <c>fastsmr demo</c> / <c>fastsmr loadgen</c>.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "write-paths")
        {
            return WritePaths.Run(args[1..]);
        }

        if (args.Length > 1 && args[0] == "transport-echo")
        {
            return TransportBench.Echo(args[1]);
        }

        if (args.Length > 0 && args[0] == "transport")
        {
            return TransportBench.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "floor")
        {
            return FloorBench.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "floor-echo")
        {
            return FloorBench.Echo();
        }

        if (args.Length > 0 && args[0] == "raft")
        {
            return RaftBench.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "tls")
        {
            return TlsBench.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "log")
        {
            return LogBench.Run(args[1..]);
        }

        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
