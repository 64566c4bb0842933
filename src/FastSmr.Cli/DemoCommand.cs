using System.CommandLine;
using System.Globalization;
using FastSmr.Testing.Clusters;
using FastSmr.Testing.Load;

namespace FastSmr.Cli;

/// <summary>
/// <c>fastsmr demo</c>: replicas as processes on 127.0.0.1, the KV load, a convergence check, clean-up
/// (<see cref="DemoRun"/>).
/// </summary>
internal static class DemoCommand
{
    public static Command Build()
    {
        var command = new Command("demo", "start replicas as processes on 127.0.0.1, run the KV load, check convergence, clean up");
        var load = new LoadOptions(command);
        var replicas = new Option<int>("--replicas") { Description = "replica processes (odd, 1-9)", DefaultValueFactory = _ => 3 };
        var keep = new Option<bool>("--keep") { Description = "keep the temporary data directory" };
        var proposals = new Option<int?>("--proposals-in-flight") { Description = "passed to every replica's serve" };
        var spin = new Option<int?>("--spin")
        {
            Description = "native back-end: iterations the replicas' threads spin before blocking (default 0: never)",
        };
        var dedicated = new Option<bool>("--dedicated-threads")
        {
            Description = "native back-end: replicas hand work to dedicated threads (see serve --help)",
        };
        command.Options.Add(replicas);
        command.Options.Add(keep);
        command.Options.Add(proposals);
        command.Options.Add(spin);
        command.Options.Add(dedicated);
        var tls = new TlsOptions(command, ownCluster: true);
        command.SetAction(
            async (result, token) =>
            {
                var serveArguments = new List<string>();
                if (result.GetValue(proposals) is { } p)
                {
                    serveArguments.AddRange(["--proposals-in-flight", p.ToString(CultureInfo.InvariantCulture)]);
                }

                if (result.GetValue(spin) is { } spinIterations)
                {
                    serveArguments.AddRange(["--spin", spinIterations.ToString(CultureInfo.InvariantCulture)]);
                }

                if (result.GetValue(dedicated))
                {
                    serveArguments.Add("--dedicated-threads");
                }

                DemoSettings settings;
                try
                {
                    settings = new DemoSettings
                    {
                        Load = load.Read(result),
                        Replicas = result.GetValue(replicas),
                        Backend = result.GetValue(load.Backend),
                        Durability = result.GetValue(load.Durability),
                        KeepDirectory = result.GetValue(keep),
                        Insecure = result.GetValue(tls.Insecure),
                        ServeArguments = serveArguments,
                        JsonPath = result.GetValue(load.Json)?.FullName,
                    };
                    settings.Validate();
                }
                catch (ArgumentException e)
                {
                    return await CommonOptions.UsageErrorAsync("demo", e.Message).ConfigureAwait(false);
                }

                return await DemoRun
                    .RunAsync(settings, ReplicaLauncher.CurrentProgram(), Console.Out, Console.Error, token)
                    .ConfigureAwait(false);
            }
        );
        return command;
    }
}
