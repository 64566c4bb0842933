using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace FastSmr.Security;

/// <summary>Whom a certificate names: a replica of the member list, or a client.</summary>
public enum CertificateRole
{
    /// <summary>A replica: it may connect to the peer port and serve the client port.</summary>
    Member = 1,

    /// <summary>A client: it may connect to the client port only.</summary>
    Client = 2,
}

/// <summary>
/// The identity a FastSmr certificate carries in its subject alternative name, as the DNS name <c>member-N.fastsmr</c>
/// or <c>client-N.fastsmr</c> (N from 1 to 2^32-1). A member's N is its replica id; a client's N is the session owner the
/// state machine sees (<c>ApplyContext.ClientId &gt;&gt; 32</c>).
/// </summary>
/// <param name="Role">Member or client.</param>
/// <param name="Number">The replica id or the client number.</param>
public readonly record struct CertificateIdentity(CertificateRole Role, uint Number)
{
    private const string Suffix = ".fastsmr";

    /// <summary>The identity of replica <paramref name="id"/>.</summary>
    public static CertificateIdentity Member(ReplicaId id) => new(CertificateRole.Member, id.Value);

    /// <summary>The identity of client <paramref name="number"/>.</summary>
    public static CertificateIdentity Client(uint number) => new(CertificateRole.Client, number);

    /// <summary>The file name stem of this identity's certificate and key ("member-1", "client-7").</summary>
    public string Name => (Role == CertificateRole.Member ? "member-" : "client-") + Number.ToString(CultureInfo.InvariantCulture);

    /// <summary>The DNS name written into the certificate ("member-1.fastsmr").</summary>
    public string DnsName => Name + Suffix;

    /// <inheritdoc/>
    public override string ToString() => Name;

    /// <summary>
    /// The identity in <paramref name="certificate"/>'s subject alternative name; false when it names none, or more
    /// than one.
    /// </summary>
    public static bool TryRead(X509Certificate2 certificate, out CertificateIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        identity = default;
        var found = 0;
        foreach (var extension in certificate.Extensions)
        {
            if (extension is not X509SubjectAlternativeNameExtension names)
            {
                continue;
            }

            foreach (var name in names.EnumerateDnsNames())
            {
                if (TryParse(name, out var parsed))
                {
                    identity = parsed;
                    found++;
                }
            }
        }

        return found == 1;
    }

    /// <summary>Parses "member-N.fastsmr" or "client-N.fastsmr".</summary>
    public static bool TryParse(string dnsName, out CertificateIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(dnsName);
        identity = default;
        if (!dnsName.EndsWith(Suffix, StringComparison.Ordinal))
        {
            return false;
        }

        var stem = dnsName.AsSpan(0, dnsName.Length - Suffix.Length);
        CertificateRole role;
        if (stem.StartsWith("member-", StringComparison.Ordinal))
        {
            role = CertificateRole.Member;
            stem = stem["member-".Length..];
        }
        else if (stem.StartsWith("client-", StringComparison.Ordinal))
        {
            role = CertificateRole.Client;
            stem = stem["client-".Length..];
        }
        else
        {
            return false;
        }

        if (!uint.TryParse(stem, NumberStyles.None, CultureInfo.InvariantCulture, out var number) || number == 0 || stem[0] == '0')
        {
            return false;
        }

        identity = new CertificateIdentity(role, number);
        return true;
    }
}
