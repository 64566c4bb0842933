using System.CommandLine;
using FastSmr.Testing.Load;

namespace FastSmr.Cli;

/// <summary><c>fastsmr loadgen</c>: the demo's load against a cluster that is already running (<see cref="LoadRun"/>).</summary>
internal static class LoadgenCommand
{
    public static Command Build()
    {
        var command = new Command("loadgen", "run the KV load against a running cluster");
        var load = new LoadOptions(command);
        var cluster = new Option<string>("--cluster") { Description = "client endpoints host:port,host:port,...", Required = true };
        command.Options.Add(cluster);
        var tls = new TlsOptions(command, ownCluster: false);
        command.SetAction(
            async (result, token) =>
            {
                LoadSettings settings;
                string[] endPoints;
                try
                {
                    settings = load.Read(result) with { Tls = tls.Read(result) };
                    endPoints = result
                        .GetValue(cluster)!
                        .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                    foreach (var endPoint in endPoints)
                    {
                        _ = Core.EndPointParser.Parse(endPoint);
                    }
                }
                catch (Exception e) when (e is ArgumentException or FormatException)
                {
                    return await CommonOptions.UsageErrorAsync("loadgen", e.Message).ConfigureAwait(false);
                }

                return await LoadRun
                    .RunAsync(
                        settings,
                        endPoints,
                        result.GetValue(load.Backend),
                        result.GetValue(load.Durability),
                        result.GetValue(load.Json)?.FullName,
                        Console.Out,
                        token
                    )
                    .ConfigureAwait(false);
            }
        );
        return command;
    }
}
