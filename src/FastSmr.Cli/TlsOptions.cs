using System.CommandLine;
using FastSmr.Security;

namespace FastSmr.Cli;

/// <summary>
/// How a client command secures its connections: <c>--certs DIR</c> and <c>--client N</c> (mutual TLS with client N's
/// certificate), or <c>--insecure</c>. Commands that start their own replicas (demo, chaos) take only <c>--insecure</c>:
/// they make throwaway certificates otherwise.
/// </summary>
internal sealed class TlsOptions
{
    private readonly Option<string?> certs = new("--certs") { Description = "certificates directory (fastsmr certs create)" };
    private readonly Option<uint> client = new("--client")
    {
        Description = "which client certificate of --certs to present (client-N)",
        DefaultValueFactory = _ => 1,
    };

    public TlsOptions(Command command, bool ownCluster)
    {
        Insecure = new Option<bool>("--insecure")
        {
            Description = ownCluster
                ? "run the replicas and clients in plaintext instead of mutual TLS with throwaway certificates"
                : "connect in plaintext (to replicas started with --insecure)",
        };
        command.Options.Add(Insecure);
        if (!ownCluster)
        {
            command.Options.Add(certs);
            command.Options.Add(client);
        }
    }

    public Option<bool> Insecure { get; }

    /// <summary>The client's credentials, or null with --insecure; throws <see cref="ArgumentException"/> on neither or both.</summary>
    public TlsCredentials? Read(ParseResult result)
    {
        var directory = result.GetValue(certs);
        var insecure = result.GetValue(Insecure);
        if (directory is null == !insecure)
        {
            throw new ArgumentException(
                insecure ? "--insecure cannot be given with --certs" : "--certs DIR is required (or --insecure for a plaintext cluster)"
            );
        }

        try
        {
            return directory is null ? null : TlsCredentials.Load(directory, CertificateIdentity.Client(result.GetValue(client)));
        }
        catch (InvalidDataException e)
        {
            throw new ArgumentException(e.Message, e);
        }
    }
}
