using System.Globalization;
using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using FastSmr.Engine;

namespace FastSmr.Server;

/// <summary>Everything a replica process needs: identity, membership, storage, durability, limits.</summary>
public sealed partial class ServerOptions
{
    /// <summary>This replica's id.</summary>
    public ReplicaId Id { get; set; }

    /// <summary>
    /// The cluster id; peers, clients and snapshots of another cluster are refused, and a data directory remembers it. 0
    /// (the default) takes it from <see cref="Certificates"/> (a random id made with the authority, the same on every
    /// replica), or 1 when <see cref="Insecure"/>. Set it only to keep a data directory made under another id.
    /// </summary>
    public ulong ClusterId { get; set; }

    /// <summary>All replicas, this one included.</summary>
    public List<MemberConfig> Members { get; set; } = [];

    /// <summary>The data directory (WAL, snapshots).</summary>
    public string DataDirectory { get; set; } = "";

    /// <summary>
    /// The certificates directory (made by <c>fastsmr certs create</c>): <c>ca.crt</c>, and this replica's
    /// <c>member-ID.crt</c> and <c>member-ID.key</c>. Both ports then run mutual TLS: peers must present their member
    /// certificate, clients a client certificate of the same authority. Required unless <see cref="Insecure"/>.
    /// </summary>
    public string? Certificates { get; set; }

    /// <summary>
    /// Runs both ports in plaintext, trusting whoever can reach them (tests of the protocol itself, benchmarks against
    /// TLS); a replica logs a warning when it starts so. See native-notes/security.md.
    /// </summary>
    public bool Insecure { get; set; }

    /// <summary>
    /// DotNext back-end: this is the first start of a new cluster, so an empty data directory is expected. Without it a
    /// DotNext replica of a multi-member cluster refuses an empty data directory: DotNext cannot hold back the vote of a
    /// replica that lost what it acknowledged (amnesia). Ignored on a non-empty data directory, and by the native
    /// back-end, which tells a new cluster apart by itself (decision 87). Give it on the first start only.
    /// </summary>
    public bool Bootstrap { get; set; }

    /// <summary>The replication back-end: "dotnext" (stock DotNext Raft, the default) or "native" (FastSmr.Raft + FastSmr.Log).</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<BackendKind>))]
    public BackendKind Backend { get; set; } = BackendKind.DotNext;

    /// <summary>
    /// Native back-end only: how many iterations its threads spin before blocking when idle (0: never spin). Spinning
    /// trades a core for the wake-up latency of a blocked thread; see native-notes/latency.md.
    /// </summary>
    public int SpinIterations { get; set; }

    /// <summary>
    /// Native back-end only: hand replication and apply work to dedicated threads instead of running it on the thread
    /// that brought it (the default, measured faster on 2 cores; see native-notes/latency.md).
    /// </summary>
    public bool DedicatedThreads { get; set; }

    /// <summary>Durability mode.</summary>
    [JsonConverter(typeof(JsonStringEnumConverter<DurabilityMode>))]
    public DurabilityMode Durability { get; set; } = DurabilityMode.Durable;

    /// <summary>The most client connections served at once.</summary>
    public int ConnectionsMax { get; set; } = 1_024;

    /// <summary>
    /// The most bytes of replies a client connection may leave unsent (queued while the client does not read); past it
    /// the connection is closed, so a client that stops reading cannot pin the replica's memory.
    /// </summary>
    public long ConnectionOutputBytesMax { get; set; } = 64L << 20;

    /// <summary>
    /// The most Status requests a replica answers per second, over all connections (a burst of as many is allowed); past
    /// it a Status request is answered Busy. A status report reads the process's precise allocation count, which is not
    /// free, and must not become a way to load the replica.
    /// </summary>
    public int StatusPerSecondMax { get; set; } = 1_000;

    /// <summary>How long a new client connection has to send its Hello before it is closed.</summary>
    public int ClientHelloTimeoutMs { get; set; } = 5_000;

    /// <summary>
    /// How long a client connection may stay silent with nothing in flight before it is closed (the client library
    /// reconnects by itself); 0 keeps idle connections open.
    /// </summary>
    public int ClientIdleTimeoutMs { get; set; } = 300_000;

    /// <summary>The most requests in flight on one connection; beyond it a request is answered Busy.</summary>
    public int InFlightPerConnectionMax { get; set; } = 4_096;

    /// <summary>The lower election timeout in milliseconds.</summary>
    public int LowerElectionTimeoutMs { get; set; } = 300;

    /// <summary>The upper election timeout in milliseconds.</summary>
    public int UpperElectionTimeoutMs { get; set; } = 600;

    /// <summary>A snapshot is taken every this many log entries, which bounds the log.</summary>
    public long SnapshotInterval { get; set; } = 2_048;

    /// <summary>The WAL chunk size of the DotNext back-end in bytes (at least 1 MiB). Compaction frees whole chunks.</summary>
    public int WalChunkBytes { get; set; } = 4 << 20;

    /// <summary>
    /// Where this replica listens for clients when that differs from the client endpoint the member list advertises
    /// (for example behind a proxy); null listens on the advertised one.
    /// </summary>
    public string? ClientListen { get; set; }

    /// <summary>
    /// Optional dial addresses per peer id: this replica connects to peer <c>id</c> through "host:port" instead of the
    /// peer's canonical Raft endpoint, which stays its identity. The chaos harness routes each ordered pair of replicas
    /// through its own proxy port this way.
    /// </summary>
    public Dictionary<ReplicaId, string> PeerRoutes { get; set; } = [];

    /// <summary>
    /// Test-only fault injection used by <c>fastsmr chaos --inject-bug</c> to prove the harness catches a broken replica;
    /// null (the default) injects nothing. See <see cref="InjectedBugs"/>.
    /// </summary>
    public string? InjectBug { get; set; }

    /// <summary>The names <see cref="InjectBug"/> accepts.</summary>
    public static IReadOnlyList<string> InjectedBugs { get; } = ["ack-without-append", "stale-read"];

    /// <summary>Engine limits (batching, queues, command size, timeouts).</summary>
    public EngineOptions Engine { get; set; } = new();

    /// <summary>This replica's member entry.</summary>
    [JsonIgnore]
    public MemberConfig Self =>
        Members.Find(m => m.Id == Id) ?? throw new InvalidOperationException("replica " + Id.ToString() + " is not among the members");

    /// <summary>The JSON settings used for configuration files.</summary>
    public static JsonSerializerOptions JsonOptions { get; } =
        new()
        {
            PropertyNameCaseInsensitive = true,
            ReadCommentHandling = JsonCommentHandling.Skip,
            UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow, // a misspelt key is an error, not a default
            WriteIndented = true,
        };

    /// <summary>Loads options from a JSON file.</summary>
    public static ServerOptions FromJsonFile(string path)
    {
        using var stream = File.OpenRead(path);
        try
        {
            return JsonSerializer.Deserialize<ServerOptions>(stream, JsonOptions)
                ?? throw new InvalidDataException("empty configuration file " + path);
        }
        catch (JsonException e)
        {
            // One line: the file, where in it, and what is wrong (an unknown key, a value of the wrong type).
            throw new JsonException(path + ": " + e.Message.Split('\n')[0], e.Path, e.LineNumber, e.BytePositionInLine, e);
        }
    }

    /// <summary>
    /// Parses a member list "id=raftHost:port/clientHost:port,..." as given on the command line.
    /// </summary>
    public static List<MemberConfig> ParseMembers(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var members = new List<MemberConfig>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var slash = part.IndexOf('/', StringComparison.Ordinal);
            if (eq <= 0 || slash < eq || !uint.TryParse(part.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out var id))
            {
                throw new FormatException("bad member '" + part + "': expected id=raftHost:port/clientHost:port");
            }

            members.Add(
                new MemberConfig
                {
                    Id = new ReplicaId(id),
                    Raft = part[(eq + 1)..slash],
                    Client = part[(slash + 1)..],
                }
            );
        }

        return members;
    }

    /// <summary>Parses peer routes "id=host:port,..." as given on the command line.</summary>
    public static Dictionary<ReplicaId, string> ParsePeerRoutes(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var routes = new Dictionary<ReplicaId, string>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            if (
                eq <= 0
                || !uint.TryParse(part.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                || !routes.TryAdd(new ReplicaId(id), part[(eq + 1)..])
            )
            {
                throw new FormatException("bad peer route '" + part + "': expected a unique id=host:port");
            }
        }

        return routes;
    }

    /// <summary>Parses "host:port" into an IP endpoint (IPv4 or IPv6 literal; "localhost" maps to 127.0.0.1).</summary>
    public static IPEndPoint ParseEndPoint(string text) => Core.EndPointParser.Parse(text);
}
