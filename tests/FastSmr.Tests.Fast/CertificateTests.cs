using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using FastSmr.Security;

namespace FastSmr.Tests;

/// <summary>
/// The throwaway authority and the identity checks every TLS connection relies on: what <c>fastsmr certs create</c>
/// writes, what <see cref="TlsCredentials"/> accepts, and a real handshake on loopback.
/// </summary>
public sealed class CertificateTests : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("fastsmr-certs-").FullName;

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private string Authority(string name, params CertificateIdentity[] identities)
    {
        var path = Path.Combine(directory, name);
        CertificateAuthority.Create(path, identities, TimeSpan.FromDays(1));
        return path;
    }

    private static CertificateIdentity Member(uint id) => CertificateIdentity.Member(new ReplicaId(id));

    [Fact]
    public void Create_WritesEveryFile_KeysReadableByTheOwnerOnly_AndRefusesAnExistingAuthority()
    {
        var path = Authority("a", Member(1), Member(2), CertificateIdentity.Client(1));
        var names = Directory.GetFiles(path).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(["ca.crt", "ca.key", "client-1.crt", "client-1.key", "member-1.crt", "member-1.key", "member-2.crt", "member-2.key"], names);
        foreach (var key in Directory.GetFiles(path, "*.key"))
        {
            if (!OperatingSystem.IsWindows())
            {
                Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(key));
            }
        }

        Assert.Throws<IOException>(() => CertificateAuthority.Create(path, [Member(3)], TimeSpan.FromDays(1)));
        Assert.Throws<ArgumentException>(() => CertificateAuthority.Create(Path.Combine(directory, "b"), [Member(1), Member(1)], TimeSpan.FromDays(1)));
    }

    [Fact]
    public void Load_ChecksTheFilesAndTheIdentity_WithOneLineNamingTheFile()
    {
        var path = Authority("a", Member(1), CertificateIdentity.Client(1));
        using (var loaded = TlsCredentials.Load(path, Member(1)))
        {
            Assert.Equal(Member(1), loaded.Identity);
        }

        var missing = Assert.Throws<InvalidDataException>(() => TlsCredentials.Load(path, Member(2)));
        Assert.Contains("member-2.crt: no such file", missing.Message, StringComparison.Ordinal);

        // client-1's certificate and key under member-2's names: the identity inside decides.
        File.Copy(Path.Combine(path, "client-1.crt"), Path.Combine(path, "member-2.crt"));
        File.Copy(Path.Combine(path, "client-1.key"), Path.Combine(path, "member-2.key"));
        var wrong = Assert.Throws<InvalidDataException>(() => TlsCredentials.Load(path, Member(2)));
        Assert.Contains("member-2.crt", wrong.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', wrong.Message);
    }

    [Fact]
    public void Check_RefusesOtherAuthorities_OtherRoles_AndOtherNumbers()
    {
        var ours = Authority("ours", Member(1), Member(2), CertificateIdentity.Client(1));
        var theirs = Authority("theirs", Member(1));
        using var one = TlsCredentials.Load(ours, Member(1));
        using var two = TlsCredentials.Load(ours, Member(2));
        using var client = TlsCredentials.Load(ours, CertificateIdentity.Client(1));
        using var stranger = TlsCredentials.Load(theirs, Member(1));
        Assert.Null(one.Check(two.Certificate, CertificateRole.Member, 2));
        Assert.Null(one.Check(client.Certificate, CertificateRole.Client, null));
        Assert.Contains("member-1 is required", one.Check(two.Certificate, CertificateRole.Member, 1), StringComparison.Ordinal);
        Assert.Contains("does not chain", one.Check(stranger.Certificate, CertificateRole.Member, 1), StringComparison.Ordinal);
        Assert.NotNull(one.Check(client.Certificate, CertificateRole.Member, null)); // no server usage, no member name
        Assert.Contains("a client is required", one.Check(two.Certificate, CertificateRole.Client, null), StringComparison.Ordinal);
        Assert.Equal("no certificate presented", one.Check(null, CertificateRole.Member, null));
    }

    [Theory]
    [InlineData("member-1.fastsmr", true)]
    [InlineData("client-4294967295.fastsmr", true)]
    [InlineData("member-0.fastsmr", false)]
    [InlineData("member-01.fastsmr", false)]
    [InlineData("client-4294967296.fastsmr", false)]
    [InlineData("member-1", false)]
    [InlineData("member-+1.fastsmr", false)]
    [InlineData("admin-1.fastsmr", false)]
    public void Identities_ParseOnlyInTheirOneForm(string name, bool valid) =>
        Assert.Equal(valid, CertificateIdentity.TryParse(name, out _));

    [Fact]
    public async Task AHandshakeOnLoopback_IsTls13_AndEachSideLearnsTheOther()
    {
        var path = Authority("a", Member(1), CertificateIdentity.Client(7));
        using var server = TlsCredentials.Load(path, Member(1));
        using var client = TlsCredentials.Load(path, CertificateIdentity.Client(7));
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        using var dialed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await dialed.ConnectAsync(listener.LocalEndPoint!);
        using var accepted = await listener.AcceptAsync();
        var serving = server.AcceptAsync(new NetworkStream(accepted), CertificateRole.Client, null, timeout.Token);
        await using var connected = await client.ConnectAsync(new NetworkStream(dialed), new ReplicaId(1), timeout.Token);
        var (stream, remote) = await serving;
        await using (stream)
        {
            Assert.Equal(CertificateIdentity.Client(7), remote);
            Assert.Equal(SslProtocols.Tls13, connected.SslProtocol);
            await connected.WriteAsync("ping"u8.ToArray(), timeout.Token);
            var buffer = new byte[4];
            await stream.ReadExactlyAsync(buffer, timeout.Token);
            Assert.Equal("ping"u8.ToArray(), buffer);
        }

        // A client that expects replica 2 refuses replica 1's certificate.
        using var again = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await again.ConnectAsync(listener.LocalEndPoint!);
        using var second = await listener.AcceptAsync();
        var refused = server.AcceptAsync(new NetworkStream(second), CertificateRole.Client, null, timeout.Token);
        var error = await Assert.ThrowsAsync<AuthenticationException>(() => client.ConnectAsync(new NetworkStream(again), new ReplicaId(2), timeout.Token));
        Assert.Contains("member-2 is required", error.Message, StringComparison.Ordinal);
        try
        {
            await (await refused).Stream.DisposeAsync(); // the server side may or may not have completed: not what is tested
        }
        catch (Exception e) when (e is AuthenticationException or IOException) { }
    }

    [Fact]
    public void TheClusterId_IsTheAuthoritys_RandomPerAuthority_AndAConfiguredIdWins()
    {
        var first = Authority("first", Member(1), Member(2));
        var second = Authority("second", Member(1));
        using var one = TlsCredentials.Load(first, Member(1));
        using var two = TlsCredentials.Load(first, Member(2));
        using var other = TlsCredentials.Load(second, Member(1));
        Assert.Equal(one.ClusterId, two.ClusterId); // every holder of the authority derives the same id
        Assert.NotEqual(one.ClusterId, other.ClusterId);
        Assert.NotEqual(0UL, one.ClusterId);
        Assert.Equal(one.ClusterId, TlsCredentials.ResolveClusterId(0, one));
        Assert.Equal(7UL, TlsCredentials.ResolveClusterId(7, one));
        Assert.Equal(1UL, TlsCredentials.ResolveClusterId(0, null));
    }
}
