using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace FastSmr.Security;

/// <summary>
/// Makes a throwaway certificate authority and the certificates of a cluster's members and clients, for tests, demos
/// and hand-run clusters (<c>fastsmr certs create</c>). Production deployments bring their own CA; FastSmr only needs
/// the files laid out as <see cref="TlsCredentials"/> reads them and the identities in the subject alternative names.
/// </summary>
/// <remarks>
/// ECDSA P-256 keys, SHA-256 signatures. The CA may sign end-entity certificates only (path length 0). Members get both
/// server and client authentication (a replica accepts and dials on the peer port); clients get client authentication
/// only, so a client certificate cannot stand in for a member. Keys are written as PKCS#8 PEM readable by the owner
/// only.
/// </remarks>
public static class CertificateAuthority
{
    /// <summary>The authority's certificate file in a certificates directory.</summary>
    public const string AuthorityFile = "ca.crt";

    /// <summary>The authority's private key (kept so that more certificates can be signed later; not read by replicas).</summary>
    public const string AuthorityKeyFile = "ca.key";

    internal static readonly Oid ServerAuthentication = new("1.3.6.1.5.5.7.3.1");
    internal static readonly Oid ClientAuthentication = new("1.3.6.1.5.5.7.3.2");

    /// <summary>The certificate file of <paramref name="identity"/> in a certificates directory.</summary>
    public static string CertificateFile(CertificateIdentity identity) => identity.Name + ".crt";

    /// <summary>The private key file of <paramref name="identity"/> in a certificates directory.</summary>
    public static string KeyFile(CertificateIdentity identity) => identity.Name + ".key";

    /// <summary>
    /// Creates <paramref name="directory"/> (if needed) with a new authority and one certificate per identity; returns the
    /// files written. Refuses a directory that already holds an authority.
    /// </summary>
    public static IReadOnlyList<string> Create(string directory, IReadOnlyCollection<CertificateIdentity> identities, TimeSpan validity)
    {
        ArgumentNullException.ThrowIfNull(identities);
        ArgumentOutOfRangeException.ThrowIfLessThan(validity, TimeSpan.FromMinutes(1));
        if (identities.Count == 0 || identities.Count != identities.Distinct().Count() || identities.Any(i => i.Number == 0))
        {
            throw new ArgumentException("identities: must be distinct, with numbers from 1", nameof(identities));
        }

        Directory.CreateDirectory(directory);
        if (File.Exists(Path.Combine(directory, AuthorityFile)))
        {
            throw new IOException(directory + " already holds a certificate authority (" + AuthorityFile + "): use another directory");
        }

        var notBefore = DateTimeOffset.UtcNow.AddMinutes(-5); // clocks of the hosts may differ a little
        var notAfter = notBefore + validity;
        using var authorityKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(
            "CN=FastSmr throwaway CA " + Convert.ToHexString(RandomNumberGenerator.GetBytes(4)),
            authorityKey,
            HashAlgorithmName.SHA256
        );
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var authority = request.CreateSelfSigned(notBefore, notAfter);
        var written = new List<string>
        {
            WritePem(directory, AuthorityFile, authority.ExportCertificatePem(), secret: false),
            WritePem(directory, AuthorityKeyFile, authorityKey.ExportPkcs8PrivateKeyPem(), secret: true),
        };
        foreach (var identity in identities)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            using var certificate = Issue(authority, key, identity, notBefore, notAfter);
            written.Add(WritePem(directory, CertificateFile(identity), certificate.ExportCertificatePem(), secret: false));
            written.Add(WritePem(directory, KeyFile(identity), key.ExportPkcs8PrivateKeyPem(), secret: true));
        }

        return written;
    }

    private static X509Certificate2 Issue(
        X509Certificate2 authority,
        ECDsa key,
        CertificateIdentity identity,
        DateTimeOffset notBefore,
        DateTimeOffset notAfter
    )
    {
        var request = new CertificateRequest("CN=" + identity.DnsName, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        var usages = new OidCollection { ClientAuthentication };
        if (identity.Role == CertificateRole.Member)
        {
            usages.Add(ServerAuthentication);
        }

        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName(identity.DnsName);
        request.CertificateExtensions.Add(names.Build(critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(authority, true, false));
        return request.Create(authority, notBefore, notAfter, RandomNumberGenerator.GetBytes(16));
    }

    private static string WritePem(string directory, string name, string pem, bool secret)
    {
        var path = Path.Combine(directory, name);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (secret && !OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        }

        using (var file = new FileStream(path, options))
        using (var writer = new StreamWriter(file))
        {
            writer.Write(pem);
            writer.Write('\n');
        }

        return path;
    }
}
