namespace FastSmr.Simulation.Runner;

/// <summary><c>--seeds N [--first-seed S] [--replicas 3|5] [--bug B]</c> or <c>--seed S [--trace] [--trace-hash]</c>; see <see cref="SimulationRunner"/>.</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args) => SimulationRunner.Run(args);
}
