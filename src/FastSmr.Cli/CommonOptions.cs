using System.CommandLine;
using FastSmr.Engine;
using FastSmr.Server;
using FastSmr.Testing.Load;

namespace FastSmr.Cli;

/// <summary>
/// The options several commands share, typed once: <c>--backend</c> and <c>--durability</c> parse into
/// <see cref="BackendKind"/> and <see cref="DurabilityMode"/> (case-insensitive) here and nowhere else, and the load
/// options of <c>demo</c> and <c>loadgen</c> into <see cref="LoadSettings"/>.
/// </summary>
internal static class CommonOptions
{
    public static Option<BackendKind> Backend() =>
        new("--backend")
        {
            Description = "replication back-end: dotnext (default) or native",
            DefaultValueFactory = _ => BackendKind.DotNext,
        };

    public static Option<DurabilityMode> Durability() =>
        new("--durability") { Description = "durable (default) or memory", DefaultValueFactory = _ => DurabilityMode.Durable };

    /// <summary>Writes "fastsmr COMMAND: message" to standard error and returns the usage-error exit code 2.</summary>
    public static async Task<int> UsageErrorAsync(string command, string message)
    {
        await Console.Error.WriteLineAsync("fastsmr " + command + ": " + message).ConfigureAwait(false);
        return 2;
    }
}

/// <summary>The load options of <c>demo</c> and <c>loadgen</c>, added to a command and read back as typed settings.</summary>
internal sealed class LoadOptions
{
    private readonly Option<int> seconds = new("--seconds") { Description = "measured seconds of load", DefaultValueFactory = _ => 10 };
    private readonly Option<int> clients = new("--clients") { Description = "connections", DefaultValueFactory = _ => 64 };
    private readonly Option<int> pipeline = new("--pipeline")
    {
        Description = "requests in flight per connection",
        DefaultValueFactory = _ => 1,
    };
    private readonly Option<int> payload = new("--payload") { Description = "value size in bytes", DefaultValueFactory = _ => 64 };
    private readonly Option<double> rate = new("--rate")
    {
        Description = "offered requests/s (open loop, latency from intended send time); 0 = closed loop",
        DefaultValueFactory = _ => 0,
    };
    private readonly Option<ulong> clusterId = new("--cluster-id")
    {
        Description = "cluster id (default: the certificates' authority's, or 1 with --insecure)",
    };
    private readonly Option<int> keys = new("--keys") { Description = "distinct keys written", DefaultValueFactory = _ => 100_000 };
    private readonly Option<FileInfo?> floor = new("--floor")
    {
        Description = "the JSON of `bench floor --json FILE` from this machine: the p50 is also reported as a ratio to its commit floor",
    };

    public LoadOptions(Command command)
    {
        foreach (
            var option in new Option[] { seconds, clients, pipeline, payload, rate, Backend, Durability, Json, clusterId, keys, floor }
        )
        {
            command.Options.Add(option);
        }
    }

    public Option<BackendKind> Backend { get; } = CommonOptions.Backend();

    public Option<DurabilityMode> Durability { get; } = CommonOptions.Durability();

    public Option<FileInfo?> Json { get; } = new("--json") { Description = "write the figures as JSON to this file" };

    /// <summary>The typed, validated settings; throws <see cref="ArgumentException"/> with the reason.</summary>
    public LoadSettings Read(ParseResult result)
    {
        var settings = new LoadSettings
        {
            Seconds = result.GetValue(seconds),
            Clients = result.GetValue(clients),
            Pipeline = result.GetValue(pipeline),
            PayloadBytes = result.GetValue(payload),
            Rate = result.GetValue(rate),
            ClusterId = result.GetValue(clusterId),
            Keys = result.GetValue(keys),
            Floor = result.GetValue(floor) is { } floorFile ? CommitFloor.Read(floorFile.FullName) : null,
        };
        settings.Validate();
        return settings;
    }
}
