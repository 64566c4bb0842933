using System.CommandLine;
using System.Globalization;
using FastSmr.Testing.Clusters;

namespace FastSmr.Cli;

/// <summary><c>fastsmr status</c>: every replica's status frame, one line each.</summary>
internal static class StatusCommand
{
    public static Command Build()
    {
        var cluster = new Option<string>("--cluster") { Description = "client endpoints host:port,...", Required = true };
        var clusterId = new Option<ulong>("--cluster-id") { Description = "cluster id (default: the authority's; 1 with --insecure)" };
        var command = new Command("status", "print every replica's status frame") { cluster, clusterId };
        var tls = new TlsOptions(command, ownCluster: false);
        command.SetAction(
            async (result, token) =>
            {
                FastSmr.Security.TlsCredentials? credentials;
                try
                {
                    credentials = tls.Read(result);
                }
                catch (ArgumentException e)
                {
                    return await CommonOptions.UsageErrorAsync("status", e.Message).ConfigureAwait(false);
                }

                var endPoints = result
                    .GetValue(cluster)!
                    .Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
                var reports = await ClusterProbe
                    .StatusesAsync(endPoints, result.GetValue(clusterId), TimeSpan.FromSeconds(2), credentials)
                    .ConfigureAwait(false);
                foreach (var s in reports)
                {
                    var indexes = string.Create(CultureInfo.InvariantCulture, $"commit {s.CommitIndex}  applied {s.AppliedIndex}");
                    var line = string.Create(
                        CultureInfo.InvariantCulture,
                        $"replica {s.ReplicaId}: {s.Role, -9} term {s.Term}  leader {s.LeaderId}  "
                    );
                    await Console.Out.WriteLineAsync(line + indexes + "  digest " + s.Digest).ConfigureAwait(false);
                }

                if (reports.Count < endPoints.Length)
                {
                    await Console
                        .Error.WriteLineAsync(
                            FormattableString.Invariant($"fastsmr status: {endPoints.Length - reports.Count} of {endPoints.Length} ")
                                + "replicas did not answer (down, or they run TLS and this ran without the right --certs, or the reverse)"
                        )
                        .ConfigureAwait(false);
                }

                return reports.Count == endPoints.Length ? 0 : 1;
            }
        );
        return command;
    }
}
