using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// <c>fastsmr serve</c> with a bad configuration: one line on standard error naming the field and the rule, exit code
/// 2, no stack trace, nothing started (on d9a8542, 11 of 12 such configurations gave a stack trace or a replica that
/// started and could not serve). Every rule has its own test in <c>ServerOptionsTests</c>; these check the program.
/// </summary>
public class ServeConfigurationTests(ITestOutputHelper output) : IDisposable
{
    private readonly string directory = Directory.CreateTempSubdirectory("fastsmr-config-").FullName;

    public void Dispose()
    {
        Directory.Delete(directory, recursive: true);
        GC.SuppressFinalize(this);
    }

    [Theory]
    [InlineData("misspelt JSON key", "ConnectionMax")]
    [InlineData("duplicate member ids", "Members[1].Id: appears twice")]
    [InlineData("election timeout 0", "LowerElectionTimeoutMs: must be 20..60000 (got 0)")]
    [InlineData("data directory is a file", "is a file, not a directory")]
    [InlineData("election timeout int.MaxValue", "LowerElectionTimeoutMs: must be 20..60000 (got 2147483647)")]
    [InlineData("neither certificates nor insecure", "Certificates: is required")]
    [InlineData("certificates and insecure", "Insecure: cannot be set together with Certificates")]
    [InlineData("no certificate for this member", "member-1.crt: no such file")]
    [InlineData("DotNext, empty data directory, no --bootstrap", "is empty: on the DotNext back-end give --bootstrap")]
    public async Task ABadConfiguration_IsRefused_WithOneLineAndExitCode2(string bad, string expected)
    {
        var members = "1=127.0.0.1:1/127.0.0.1:2,2=127.0.0.1:3/127.0.0.1:4";
        var data = Path.Combine(directory, "data");
        string[] arguments = bad switch
        {
            "misspelt JSON key" => ["serve", "--config", Write("config.json", """{ "Id": 1, "ConnectionMax": 10 }"""), "--members", members, "--data", data],
            "duplicate member ids" => ["serve", "--id", "1", "--members", "1=127.0.0.1:1/127.0.0.1:2,1=127.0.0.1:3/127.0.0.1:4", "--data", data],
            "election timeout 0" => ["serve", "--id", "1", "--members", members, "--data", data, "--election-timeout-ms", "0"],
            "data directory is a file" => ["serve", "--id", "1", "--members", members, "--data", Write("a-file", "x")],
            "election timeout int.MaxValue" => ["serve", "--id", "1", "--members", members, "--data", data, "--election-timeout-ms", int.MaxValue.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            "neither certificates nor insecure" => ["serve", "--id", "1", "--members", members, "--data", data],
            "DotNext, empty data directory, no --bootstrap" => ["serve", "--id", "1", "--members", members, "--data", data, "--insecure", "--backend", "dotnext"],
            "certificates and insecure" => ["serve", "--id", "1", "--members", members, "--data", data, "--insecure", "--certs", directory],
            _ => ["serve", "--id", "1", "--members", members, "--data", data, "--certs", CertificatesOfMember2Only()],
        };
        if (bad.StartsWith("election timeout", StringComparison.Ordinal))
        {
            arguments = [.. arguments, "--insecure"]; // else the missing certificates are named first
        }


        var (exitCode, _, errors) = await FastsmrProcess.RunWithErrorsAsync(output, TimeSpan.FromMinutes(1), arguments);

        Assert.Equal(2, exitCode);
        var lines = errors.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Single(lines);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain(" at ", lines[0], StringComparison.Ordinal);
        Assert.False(Directory.Exists(data), "a refused configuration created the data directory");
    }

    private string CertificatesOfMember2Only()
    {
        var certificates = Path.Combine(directory, "certs");
        FastSmr.Security.CertificateAuthority.Create(certificates, [FastSmr.Security.CertificateIdentity.Member(new ReplicaId(2))], TimeSpan.FromDays(1));
        return certificates;
    }

    private string Write(string name, string text)
    {
        var path = Path.Combine(directory, name);
        File.WriteAllText(path, text);
        return path;
    }
}
