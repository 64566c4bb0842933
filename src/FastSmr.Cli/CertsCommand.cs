using System.CommandLine;
using System.Globalization;
using FastSmr.Security;

namespace FastSmr.Cli;

/// <summary><c>fastsmr certs create</c>: a throwaway authority with certificates (<see cref="CertificateAuthority"/>).</summary>
internal static class CertsCommand
{
    public static Command Build()
    {
        var output = new Option<DirectoryInfo>("--out")
        {
            Description = "directory to create (must not hold an authority yet)",
            Required = true,
        };
        var members = new Option<string>("--members") { Description = "member ids: 1,2,3", Required = true };
        var clients = new Option<int>("--clients") { Description = "client certificates client-1..client-N", DefaultValueFactory = _ => 1 };
        var days = new Option<int>("--days") { Description = "validity in days", DefaultValueFactory = _ => 365 };
        var create = new Command("create", "make a throwaway CA and member/client certificates for tests, demos and hand-run clusters")
        {
            output,
            members,
            clients,
            days,
        };
        create.SetAction(
            async (result, token) =>
            {
                List<CertificateIdentity> identities = [];
                try
                {
                    foreach (var part in result.GetValue(members)!.Split(',', StringSplitOptions.TrimEntries))
                    {
                        if (!uint.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id is 0 or > int.MaxValue)
                        {
                            throw new ArgumentException("--members: '" + part + "' is not a replica id (1.." + int.MaxValue + ")");
                        }

                        identities.Add(CertificateIdentity.Member(new ReplicaId(id)));
                    }

                    OptionRange("--clients", result.GetValue(clients), 0, 10_000);
                    OptionRange("--days", result.GetValue(days), 1, 36_500);
                    identities.AddRange(Enumerable.Range(1, result.GetValue(clients)).Select(i => CertificateIdentity.Client((uint)i)));
                    var written = CertificateAuthority.Create(
                        result.GetValue(output)!.FullName,
                        identities,
                        TimeSpan.FromDays(result.GetValue(days))
                    );
                    await Console.Out.WriteLineAsync(string.Join('\n', written)).ConfigureAwait(false);
                    return 0;
                }
                catch (Exception e) when (e is ArgumentException or IOException or UnauthorizedAccessException)
                {
                    return await CommonOptions.UsageErrorAsync("certs create", e.Message).ConfigureAwait(false);
                }
            }
        );
        return new Command("certs", "certificates for mutual TLS") { create };
    }

    private static void OptionRange(string name, int value, int min, int max)
    {
        if (value < min || value > max)
        {
            throw new ArgumentException(string.Create(CultureInfo.InvariantCulture, $"{name}: must be {min}..{max} (got {value})"));
        }
    }
}
