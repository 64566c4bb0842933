using BenchmarkDotNet.Running;

namespace FastSmr.Bench;

/// <summary>Component benchmarks (BenchmarkDotNet). Cluster figures come from <c>fastsmr demo</c> / <c>fastsmr loadgen</c>.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
