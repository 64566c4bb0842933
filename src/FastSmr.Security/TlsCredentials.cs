using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FastSmr.Security;

/// <summary>
/// What one process needs for mutual TLS: the cluster's authority (the only root it trusts) and its own certificate and
/// key. Every connection on the peer and the client ports is authenticated both ways through <see cref="AcceptAsync"/>
/// and <see cref="ConnectAsync"/>: the remote certificate must chain to this authority, carry the usage its side needs,
/// and name the identity (role, and where known the number) the caller expects.
/// </summary>
public sealed class TlsCredentials : IDisposable
{
    /// <summary>TLS 1.3 where the platform has it (Debian 12's OpenSSL 3 does); 1.2 only as a fallback.</summary>
    private const SslProtocols Protocols = SslProtocols.Tls13 | SslProtocols.Tls12;

    private readonly X509ChainPolicy serverChainPolicy;
    private readonly X509ChainPolicy clientChainPolicy;
    private readonly SslStreamCertificateContext context;

    private TlsCredentials(X509Certificate2 authority, X509Certificate2 certificate, CertificateIdentity identity, string directory)
    {
        Authority = authority;
        Certificate = certificate;
        Identity = identity;
        Directory = directory;
        serverChainPolicy = Policy(authority, CertificateAuthority.ServerAuthentication);
        clientChainPolicy = Policy(authority, CertificateAuthority.ClientAuthentication);
        context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        var id = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(SHA256.HashData(authority.RawData));
        ClusterId = id == 0 ? 1 : id;
    }

    /// <summary>The authority every remote certificate must chain to.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>This process's certificate (with its private key).</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The identity in <see cref="Certificate"/>.</summary>
    public CertificateIdentity Identity { get; }

    /// <summary>
    /// The cluster id this authority stands for: the first 8 bytes of the SHA-256 of its certificate. Random (the
    /// authority's key is), made when the authority was (<c>fastsmr certs create</c> is the cluster's bootstrap), and the
    /// same on every replica and client without configuration.
    /// </summary>
    public ulong ClusterId { get; }

    /// <summary>
    /// The cluster id to use: <paramref name="configured"/> when it is set (non-zero), else the authority's
    /// (<see cref="ClusterId"/>) with TLS, else 1.
    /// </summary>
    public static ulong ResolveClusterId(ulong configured, TlsCredentials? tls) => configured != 0 ? configured : tls?.ClusterId ?? 1;

    /// <summary>The directory the files were read from.</summary>
    public string Directory { get; }

    /// <summary>
    /// Reads <c>ca.crt</c>, <c>NAME.crt</c> and <c>NAME.key</c> from <paramref name="directory"/> (NAME is
    /// <paramref name="identity"/>'s name, for example <c>member-1</c>) and checks that the certificate is this identity's
    /// and chains to the authority. Every problem is one line naming the file.
    /// </summary>
    public static TlsCredentials Load(string directory, CertificateIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(directory);
        var authorityPath = Path.Combine(directory, CertificateAuthority.AuthorityFile);
        var certificatePath = Path.Combine(directory, CertificateAuthority.CertificateFile(identity));
        var keyPath = Path.Combine(directory, CertificateAuthority.KeyFile(identity));
        foreach (var path in new[] { authorityPath, certificatePath, keyPath })
        {
            if (!File.Exists(path))
            {
                throw new InvalidDataException(path + ": no such file (make the directory with `fastsmr certs create`)");
            }
        }

        X509Certificate2 authority;
        X509Certificate2 certificate;
        try
        {
            authority = X509Certificate2.CreateFromPem(File.ReadAllText(authorityPath));
            certificate = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (CryptographicException e)
        {
            throw new InvalidDataException(directory + ": unreadable certificate or key for " + identity + ": " + e.Message, e);
        }

        var credentials = new TlsCredentials(authority, certificate, identity, directory);
        var usage = identity.Role == CertificateRole.Member ? CertificateRole.Member : CertificateRole.Client;
        if (credentials.Check(certificate, usage, identity.Number) is { } problem)
        {
            credentials.Dispose();
            throw new InvalidDataException(certificatePath + ": " + problem);
        }

        return credentials;
    }

    /// <summary>
    /// The server side of a handshake on <paramref name="inner"/>: presents this certificate, requires one from the
    /// other side whose identity has <paramref name="role"/> (and, unless null, is accepted by
    /// <paramref name="accept"/>), and returns the stream and that identity. Throws <see cref="AuthenticationException"/>
    /// when the other side is not who it must be; the caller bounds the time with <paramref name="token"/>.
    /// </summary>
    public async Task<(SslStream Stream, CertificateIdentity Remote)> AcceptAsync(
        Stream inner,
        CertificateRole role,
        Func<CertificateIdentity, bool>? accept,
        CancellationToken token
    )
    {
        CertificateIdentity remote = default;
        string? refused = null;
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = context,
            ClientCertificateRequired = true,
            EnabledSslProtocols = Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                refused = Check(certificate, role, null, out remote);
                if (refused is null && accept is not null && !accept(remote))
                {
                    refused = remote + " is not allowed here";
                }

                return refused is null;
            },
        };
        var stream = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await stream.AuthenticateAsServerAsync(options, token).ConfigureAwait(false);
            return (stream, remote);
        }
        catch (AuthenticationException e) when (refused is not null)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new AuthenticationException(refused, e);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// The client side of a handshake on <paramref name="inner"/>: presents this certificate and requires a member's
    /// from the server, of replica <paramref name="member"/> when given (any member otherwise).
    /// </summary>
    public async Task<SslStream> ConnectAsync(Stream inner, ReplicaId? member, CancellationToken token)
    {
        string? refused = null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = member is { } id ? CertificateIdentity.Member(id).DnsName : "member.fastsmr",
            ClientCertificateContext = context,
            EnabledSslProtocols = Protocols,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                refused = Check(certificate, CertificateRole.Member, member?.Value, out _);
                return refused is null;
            },
        };
        var stream = new SslStream(inner, leaveInnerStreamOpen: false);
        try
        {
            await stream.AuthenticateAsClientAsync(options, token).ConfigureAwait(false);
            return stream;
        }
        catch (AuthenticationException e) when (refused is not null)
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw new AuthenticationException(refused, e);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Why <paramref name="certificate"/> is not acceptable as <paramref name="role"/> (numbered
    /// <paramref name="number"/> when given), or null when it is: it must chain to the authority (and nothing else), be
    /// valid now, carry the usage of its side, and name exactly one identity of that role.
    /// </summary>
    public string? Check(X509Certificate? certificate, CertificateRole role, uint? number) => Check(certificate, role, number, out _);

    private string? Check(X509Certificate? certificate, CertificateRole role, uint? number, out CertificateIdentity identity)
    {
        identity = default;
        if (certificate is null)
        {
            return "no certificate presented";
        }

        using var owned = certificate as X509Certificate2 is null
            ? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData())
            : null;
        var leaf = owned ?? (X509Certificate2)certificate;
        using var chain = new X509Chain { ChainPolicy = (role == CertificateRole.Member ? serverChainPolicy : clientChainPolicy).Clone() };
        if (!chain.Build(leaf))
        {
            var status = chain.ChainStatus.Length > 0 ? chain.ChainStatus[0].StatusInformation.Trim() : "unknown reason";
            return "certificate " + leaf.Subject + " does not chain to this cluster's authority: " + status;
        }

        if (!CertificateIdentity.TryRead(leaf, out identity))
        {
            return "certificate " + leaf.Subject + " names no FastSmr identity (member-N.fastsmr or client-N.fastsmr)";
        }

        if (identity.Role != role)
        {
            return "certificate of " + identity + " where a " + role.ToString().ToLowerInvariant() + " is required";
        }

        return number is { } expected && identity.Number != expected
            ? "certificate of " + identity + " where " + role.ToString().ToLowerInvariant() + "-" + expected + " is required"
            : null;
    }

    private static X509ChainPolicy Policy(X509Certificate2 authority, Oid usage)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
            DisableCertificateDownloads = true,
        };
        policy.CustomTrustStore.Add(authority);
        policy.ApplicationPolicy.Add(usage);
        return policy;
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        Certificate.Dispose();
        Authority.Dispose();
    }
}
