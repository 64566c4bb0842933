using System.Collections.Concurrent;
using FastSmr.Client;
using FastSmr.Security;

namespace FastSmr.Testing.Clusters;

/// <summary>
/// Certificates for the harness's clusters (the tests, <c>fastsmr demo</c>, <c>fastsmr chaos</c>): a throwaway authority
/// and member and client certificates in a directory the cluster owns, and the clients' credentials loaded once per
/// process.
/// </summary>
public static class ClusterCertificates
{
    /// <summary>Client certificates made for a harness cluster (client-1 drives the load; client-2 plays another owner).</summary>
    public const int Clients = 2;

    /// <summary>How long a harness cluster's certificates are valid: far longer than any run.</summary>
    private static readonly TimeSpan Validity = TimeSpan.FromDays(30);

    private static readonly ConcurrentDictionary<(string, uint), TlsCredentials> Loaded = new();

    /// <summary>Makes <paramref name="directory"/>: an authority, members 1..N and <see cref="Clients"/> clients.</summary>
    public static string Create(string directory, int members)
    {
        var identities = Enumerable
            .Range(1, members)
            .Select(i => CertificateIdentity.Member(new ReplicaId((uint)i)))
            .Concat(Enumerable.Range(1, Clients).Select(i => CertificateIdentity.Client((uint)i)))
            .ToArray();
        CertificateAuthority.Create(directory, identities, Validity);
        return directory;
    }

    /// <summary>Client <paramref name="number"/>'s credentials in <paramref name="directory"/> (loaded once); null for null.</summary>
    public static TlsCredentials? Client(string? directory, uint number = 1) =>
        directory is null
            ? null
            : Loaded.GetOrAdd((directory, number), k => TlsCredentials.Load(k.Item1, CertificateIdentity.Client(k.Item2)));

    /// <summary>Sets <paramref name="options"/> up for a cluster: TLS with <paramref name="tls"/>, plaintext without.</summary>
    public static FastSmrClientOptions Secured(this FastSmrClientOptions options, TlsCredentials? tls)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Tls = tls;
        options.Insecure = tls is null;
        return options;
    }
}
