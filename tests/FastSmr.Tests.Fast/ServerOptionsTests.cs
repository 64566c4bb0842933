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
              "PeerRoutes": { "1": "127.0.0.1:5" } }
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
}
