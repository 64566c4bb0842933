using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using FastSmr.Engine;
using FastSmr.Server;

namespace FastSmr.Testing.Load;

/// <summary>The JSON written by <c>--json FILE</c> (schema version 1).</summary>
internal sealed record RunReport
{
    [JsonPropertyName("schema_version")]
    public int SchemaVersion { get; init; } = 1;

    [JsonPropertyName("backend")]
    public string Backend { get; init; } = "";

    [JsonPropertyName("durability")]
    public string Durability { get; init; } = "";

    /// <summary>Whether the clients and peers ran mutual TLS (false: <c>--insecure</c>).</summary>
    public bool Tls { get; init; }

    [JsonPropertyName("replicas")]
    public int Replicas { get; init; }

    [JsonPropertyName("clients")]
    public int Clients { get; init; }

    [JsonPropertyName("pipeline")]
    public int Pipeline { get; init; }

    [JsonPropertyName("payload_bytes")]
    public int PayloadBytes { get; init; }

    [JsonPropertyName("offered_rate")]
    public double OfferedRate { get; init; }

    [JsonPropertyName("seconds")]
    public double Seconds { get; init; }

    [JsonPropertyName("ops")]
    public long Ops { get; init; }

    [JsonPropertyName("ops_per_sec")]
    public double OpsPerSec { get; init; }

    [JsonPropertyName("errors")]
    public long Errors { get; init; }

    [JsonPropertyName("errors_by_status")]
    public Dictionary<string, long> ErrorsByStatus { get; init; } = [];

    [JsonPropertyName("latency_us")]
    public Dictionary<string, long> LatencyUs { get; init; } = [];

    [JsonPropertyName("replicas_converged")]
    public bool ReplicasConverged { get; init; }

    [JsonPropertyName("leader_alloc_bytes_per_cmd")]
    public double? LeaderAllocBytesPerCmd { get; init; }

    [JsonPropertyName("commit_floor")]
    public Dictionary<string, object>? CommitFloor { get; init; }

    [JsonPropertyName("settings")]
    public Dictionary<string, object> Settings { get; init; } = DefaultSettings();

    [JsonPropertyName("machine")]
    public Dictionary<string, object> Machine { get; init; } = [];

    [JsonPropertyName("commit")]
    public string Commit { get; init; } = "";

    [JsonPropertyName("measured_at")]
    public string MeasuredAt { get; init; } = DateTimeOffset.UtcNow.ToString("O", System.Globalization.CultureInfo.InvariantCulture);

    private static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>The replica settings the demo runs with (the defaults of serve).</summary>
    private static Dictionary<string, object> DefaultSettings()
    {
        var server = new FastSmr.Server.ServerOptions();
        var engine = server.Engine;
        return new Dictionary<string, object>
        {
            ["proposals_in_flight_max"] = engine.ProposalsInFlightMax,
            ["batch_bytes_max"] = engine.BatchBytesMax,
            ["batch_commands_max"] = engine.BatchCommandsMax,
            ["election_timeout_ms"] = FormattableString.Invariant($"{server.LowerElectionTimeoutMs}-{server.UpperElectionTimeoutMs}"),
            ["snapshot_interval_entries"] = server.SnapshotInterval,
            ["wal_chunk_bytes"] = server.WalChunkBytes,
            ["warmup_seconds"] = 1,
            ["gc"] = System.Runtime.GCSettings.IsServerGC ? "server" : "workstation",
        };
    }

    public static RunReport From(
        LoadReport load,
        LoadSettings settings,
        BackendKind backend,
        DurabilityMode durability,
        int replicas,
        bool converged,
        double? allocPerCmd
    ) =>
        new()
        {
            Backend = Names.Of(backend),
            Durability = Names.Of(durability),
            Tls = settings.Tls is not null,
            Replicas = replicas,
            Clients = settings.Clients,
            Pipeline = settings.Pipeline,
            PayloadBytes = settings.PayloadBytes,
            OfferedRate = settings.Rate,
            Seconds = load.Seconds,
            Ops = load.Ops,
            OpsPerSec = Math.Round(load.OpsPerSecond, 1),
            Errors = load.Errors,
            ErrorsByStatus = load.ErrorsByStatus,
            LatencyUs = new Dictionary<string, long>
            {
                ["p50"] = load.P50Us,
                ["p90"] = load.P90Us,
                ["p99"] = load.P99Us,
                ["p999"] = load.P999Us,
                ["max"] = load.MaxUs,
            },
            ReplicasConverged = converged,
            LeaderAllocBytesPerCmd = allocPerCmd is { } a ? Math.Round(a, 1) : null,
            Machine = MachineInfo.Describe(),
            Commit = MachineInfo.Commit(),
            CommitFloor = settings.Floor is { } floor
                ? new Dictionary<string, object>
                {
                    ["commit_floor_us_p50"] = floor.CommitFloorUsP50,
                    ["rtt_us_p50"] = floor.RttUsP50,
                    ["fdatasync_4k_us_p50"] = floor.FdatasyncUsP50,
                    ["floor_measured_at"] = floor.MeasuredAt,
                    ["p50_to_floor"] = Math.Round(floor.Ratio(load.P50Us), 2),
                }
                : null,
        };

    private static readonly string[] NotRuntimeKnobs = ["DOTNET_ROOT", "DOTNET_CLI_", "DOTNET_NOLOGO", "DOTNET_GENERATE_", "DOTNET_SKIP_"];

    /// <summary>The DOTNET_* variables the replicas inherit (GC mode, tiering, socket completions), "" when none.</summary>
    public static string RuntimeEnvironment() =>
        string.Join(
            ' ',
            Environment
                .GetEnvironmentVariables()
                .Keys.Cast<string>()
                .Where(k =>
                    k.StartsWith("DOTNET_", StringComparison.Ordinal)
                    && !NotRuntimeKnobs.Any(p => k.StartsWith(p, StringComparison.Ordinal))
                )
                .Order(StringComparer.Ordinal)
                .Select(k => k + "=" + Environment.GetEnvironmentVariable(k))
        );

    public async Task WriteAsync(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path));
        if (directory is not null)
        {
            Directory.CreateDirectory(directory);
        }

        var stream = File.Create(path);
        await using (stream.ConfigureAwait(false))
        {
            await JsonSerializer.SerializeAsync(stream, this, Options).ConfigureAwait(false);
        }
    }

    public static void PrintTable(
        TextWriter output,
        LoadReport load,
        LoadSettings settings,
        BackendKind backend,
        DurabilityMode durability,
        bool converged,
        double? allocPerCmd
    )
    {
        var mode = settings.Rate > 0 ? FormattableString.Invariant($"open loop, {settings.Rate:F0} req/s offered") : "closed loop";
        output.WriteLine();
        output.WriteLine(
            FormattableString.Invariant($"FastSmr {Names.Of(backend)} back-end, {Names.Of(durability)}, ")
                + (settings.Tls is null ? "INSECURE, " : "mutual TLS, ")
                + FormattableString.Invariant($"{settings.Clients} client(s) x ")
                + FormattableString.Invariant(
                    $"{settings.Pipeline} in flight, {settings.PayloadBytes} B values, {mode}, {settings.Seconds} s"
                )
        );
        output.WriteLine("  ------------------------------------------");
        output.WriteLine(FormattableString.Invariant($"  committed ops/s      {load.OpsPerSecond, 14:N0}"));
        output.WriteLine(FormattableString.Invariant($"  committed ops        {load.Ops, 14:N0}"));
        output.WriteLine(FormattableString.Invariant($"  latency p50          {load.P50Us / 1000.0, 11:F3} ms"));
        if (settings.Floor is { } floor)
        {
            output.WriteLine("  p50 / floor          " + floor.Describe(load.P50Us));
        }

        output.WriteLine(FormattableString.Invariant($"  latency p90          {load.P90Us / 1000.0, 11:F3} ms"));
        output.WriteLine(FormattableString.Invariant($"  latency p99          {load.P99Us / 1000.0, 11:F3} ms"));
        output.WriteLine(FormattableString.Invariant($"  latency p99.9        {load.P999Us / 1000.0, 11:F3} ms"));
        output.WriteLine(FormattableString.Invariant($"  latency max          {load.MaxUs / 1000.0, 11:F3} ms"));
        var byStatus = string.Join(", ", load.ErrorsByStatus.Select(p => p.Key + "=" + p.Value.ToString(CultureInfo.InvariantCulture)));
        output.WriteLine(FormattableString.Invariant($"  errors               {load.Errors, 14:N0}  {byStatus}"));
        var alloc = allocPerCmd is { } a ? a.ToString("F0", CultureInfo.InvariantCulture) + " B" : "n/a";
        output.WriteLine(FormattableString.Invariant($"  leader alloc/command {alloc, 14}"));
        output.WriteLine(FormattableString.Invariant($"  replicas converged   {(converged ? "yes" : "NO"), 14}"));
        var generatorPerOp = load.Ops > 0 ? load.GeneratorAllocatedBytes / (double)load.Ops : 0;
        output.WriteLine(
            FormattableString.Invariant($"  load generator       {generatorPerOp, 10:F0} B/op, {load.GeneratorGen0Collections} gen0 GCs")
        );
        output.WriteLine("  ------------------------------------------");
    }
}
