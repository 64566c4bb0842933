using FastSmr.Server;

namespace FastSmr.Tests;

/// <summary>The replica's options refuse what cannot work, with a reason.</summary>
public class ServerOptionsTests
{
    [Fact]
    public void PeerRoutes_AreValidated()
    {
        var options = new ServerOptions
        {
            Id = new ReplicaId(1),
            DataDirectory = "/tmp/unused",
            Members = ServerOptions.ParseMembers("1=127.0.0.1:1/127.0.0.1:2,2=127.0.0.1:3/127.0.0.1:4"),
            PeerRoutes = ServerOptions.ParsePeerRoutes("2=127.0.0.1:5"),
            Insecure = true,
        };
        options.Validate();
        options.PeerRoutes = ServerOptions.ParsePeerRoutes("1=127.0.0.1:5");
        Assert.Contains("not another member", Assert.Throws<ArgumentException>(options.Validate).Message, StringComparison.Ordinal);
        options.PeerRoutes = ServerOptions.ParsePeerRoutes("3=127.0.0.1:5");
        Assert.Throws<ArgumentException>(options.Validate);
        Assert.Throws<FormatException>(() => ServerOptions.ParsePeerRoutes("2=127.0.0.1:5,2=127.0.0.1:6"));
        Assert.Throws<FormatException>(() => ServerOptions.ParsePeerRoutes("x=127.0.0.1:5"));
        options.PeerRoutes = [];
        options.InjectBug = "no-such-bug";
        Assert.Throws<ArgumentException>(options.Validate);
    }

    [Fact]
    public void ConfigurationFile_KeepsReplicaIdsAsBareNumbers()
    {
        // The configuration file format predates the ReplicaId type: ids are numbers, route keys are numeric strings.
        const string Json = """
            { "Id": 2, "DataDirectory": "/tmp/unused",
              "Members": [ { "Id": 1, "Raft": "127.0.0.1:1", "Client": "127.0.0.1:2" },
                           { "Id": 2, "Raft": "127.0.0.1:3", "Client": "127.0.0.1:4" } ],
              "PeerRoutes": { "1": "127.0.0.1:5" }, "Insecure": true }
            """;
        var options = System.Text.Json.JsonSerializer.Deserialize<ServerOptions>(Json, ServerOptions.JsonOptions)!;
        Assert.Equal(new ReplicaId(2), options.Id);
        Assert.Equal([new ReplicaId(1), new ReplicaId(2)], options.Members.Select(m => m.Id));
        Assert.Equal("127.0.0.1:5", options.PeerRoutes[new ReplicaId(1)]);
        options.Validate();

        var written = System.Text.Json.JsonSerializer.Serialize(options, ServerOptions.JsonOptions);
        Assert.Contains("\"Id\": 2", written, StringComparison.Ordinal);
        Assert.Contains("\"1\": \"127.0.0.1:5\"", written, StringComparison.Ordinal);
        var bad = Json.Replace("\"1\": \"127", "\"one\": \"127", StringComparison.Ordinal);
        Assert.Throws<System.Text.Json.JsonException>(() => System.Text.Json.JsonSerializer.Deserialize<ServerOptions>(bad, ServerOptions.JsonOptions));
    }

    private static ServerOptions Valid() =>
        new()
        {
            Id = new ReplicaId(1),
            DataDirectory = "/tmp/fastsmr-options-test-unused",
            Members = ServerOptions.ParseMembers("1=127.0.0.1:1/127.0.0.1:2,2=127.0.0.1:3/127.0.0.1:4,3=127.0.0.1:5/127.0.0.1:6"),
            Insecure = true,
        };

    public static TheoryData<string, string> BadValues =>
        new()
        {
            { "duplicate member ids", "Members[2].Id: appears twice" },
            { "member id 0", "Members[0].Id: must be 1.." },
            { "id 0", "Id: must be non-zero" },
            { "id not a member", "Id: replica 9 is not among the members" },
            { "no members", "Members: at least one member is required" },
            { "same peer endpoint twice", "Members[2].Raft: another member has this endpoint" },
            { "bad client endpoint", "Members[1].Client:" },
            { "election timeout 0", "LowerElectionTimeoutMs: must be 20..60000 (got 0)" },
            { "election timeout below the tick", "LowerElectionTimeoutMs: must be 20..60000 (got 5)" },
            { "upper timeout not above lower", "UpperElectionTimeoutMs: must be 301..120000 (got 300)" },
            { "snapshot interval 0", "SnapshotInterval: must be 1..1073741824 (got 0)" },
            { "no data directory", "DataDirectory: is required" },
            { "data directory is a file", "is a file, not a directory" },
            { "connections int.MaxValue", "ConnectionsMax: must be 1..100000 (got 2147483647)" },
            { "in-flight int.MaxValue", "InFlightPerConnectionMax: must be 1..1048576 (got 2147483647)" },
            { "negative spin", "SpinIterations: must be 0..1000000 (got -1)" },
            { "WAL chunk too small", "WalChunkBytes: must be 1048576..1073741824 (got 1000)" },
            { "batch bytes int.MaxValue", "Engine.BatchBytesMax: must be 4096..67108864 (got 2147483647)" },
            { "command larger than a batch", "Engine.CommandBytesMax: must be 1.." },
            { "negative default timeout", "Engine.DefaultTimeout: must be" },
            { "timeout max of a day", "Engine.TimeoutMax: must be" },
            { "proposals in flight 0", "Engine.ProposalsInFlightMax: must be 1..1024 (got 0)" },
            { "queued commands int.MaxValue", "Engine.QueuedCommandsMax: must be 1..16777216 (got 2147483647)" },
            { "peer route to itself", "PeerRoutes.1: not another member" },
            { "unknown injected bug", "InjectBug: unknown 'x'" },
            { "neither certificates nor insecure", "Certificates: is required" },
            { "certificates and insecure", "Insecure: cannot be set together with Certificates" },
            { "certificates not a directory", "Certificates: /nonexistent-fastsmr-certs is not a directory" },
        };

    [Theory]
    [MemberData(nameof(BadValues))]
    public void EveryBadValue_IsRefused_WithOneLineNamingTheFieldAndTheRule(string bad, string expected)
    {
        var file = Path.GetTempFileName(); // for "data directory is a file"
        try
        {
            var options = Valid();
            options.Validate();
            Break(options, bad, file);
            var message = Assert.Throws<ArgumentException>(options.Validate).Message;
            Assert.Contains(expected, message, StringComparison.Ordinal);
            Assert.DoesNotContain('\n', message);
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static void Break(ServerOptions o, string bad, string file)
    {
        switch (bad)
        {
            case "duplicate member ids": o.Members[2].Id = new ReplicaId(2); break;
            case "member id 0": o.Members[2].Id = default; break;
            case "id 0": o.Id = default; break;
            case "id not a member": o.Id = new ReplicaId(9); break;
            case "no members": o.Members = []; break;
            case "neither certificates nor insecure": o.Insecure = false; break;
            case "certificates and insecure": o.Certificates = Path.GetTempPath(); break;
            case "certificates not a directory": o.Insecure = false; o.Certificates = "/nonexistent-fastsmr-certs"; break;
            case "same peer endpoint twice": o.Members[1].Raft = o.Members[0].Raft; break;
            case "bad client endpoint": o.Members[0].Client = "nowhere"; break;
            case "election timeout 0": o.LowerElectionTimeoutMs = 0; break;
            case "election timeout below the tick": o.LowerElectionTimeoutMs = 5; break;
            case "upper timeout not above lower": o.UpperElectionTimeoutMs = 300; break;
            case "snapshot interval 0": o.SnapshotInterval = 0; break;
            case "no data directory": o.DataDirectory = " "; break;
            case "data directory is a file": o.DataDirectory = file; break;
            case "connections int.MaxValue": o.ConnectionsMax = int.MaxValue; break;
            case "in-flight int.MaxValue": o.InFlightPerConnectionMax = int.MaxValue; break;
            case "negative spin": o.SpinIterations = -1; break;
            case "WAL chunk too small": o.WalChunkBytes = 1000; break;
            case "batch bytes int.MaxValue": o.Engine.BatchBytesMax = int.MaxValue; break;
            case "command larger than a batch": o.Engine.CommandBytesMax = o.Engine.BatchBytesMax; break;
            case "negative default timeout": o.Engine.DefaultTimeout = TimeSpan.FromSeconds(-1); break;
            case "timeout max of a day": o.Engine.TimeoutMax = TimeSpan.FromDays(1); break;
            case "proposals in flight 0": o.Engine.ProposalsInFlightMax = 0; break;
            case "queued commands int.MaxValue": o.Engine.QueuedCommandsMax = int.MaxValue; break;
            case "peer route to itself": o.PeerRoutes[new ReplicaId(1)] = "127.0.0.1:9"; break;
            case "unknown injected bug": o.InjectBug = "x"; break;
            default: throw new ArgumentOutOfRangeException(nameof(bad), bad);
        }
    }

    [Fact]
    public void AMisspeltJsonKey_IsRefused_NamingTheFileAndTheKey()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, """{ "Id": 1, "DataDirectory": "/tmp/x", "ConnectionMax": 10 }""");
            var message = Assert.Throws<System.Text.Json.JsonException>(() => ServerOptions.FromJsonFile(file)).Message;
            Assert.Contains(file, message, StringComparison.Ordinal);
            Assert.Contains("ConnectionMax", message, StringComparison.Ordinal);
            File.WriteAllText(file, """{ "Id": 1, "Engine": { "BatchByteMax": 10 } }""");
            Assert.Contains("BatchByteMax", Assert.Throws<System.Text.Json.JsonException>(() => ServerOptions.FromJsonFile(file)).Message, StringComparison.Ordinal);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
