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
            Id = 1,
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
}
