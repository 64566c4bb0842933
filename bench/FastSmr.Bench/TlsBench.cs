using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Text.Json;
using FastSmr.Security;

namespace FastSmr.Bench;

/// <summary>
/// <c>tls [--round-trips N] [--json FILE]</c>: what one TLS hop costs on this machine, apart from FastSmr. A 64 B
/// ping-pong over 127.0.0.1 between two tasks of this process, through a plain <see cref="NetworkStream"/> and through
/// <see cref="SslStream"/> (TLS 1.3, the certificates of <c>fastsmr certs create</c>), in the same run; and the CPU time
/// of one encryption (a 200 B <c>SslStream.Write</c> into memory, as the native peer link seals) and one decryption.
/// </summary>
internal static class TlsBench
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        var roundTrips = 20_000;
        string? json = null;
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--round-trips":
                    roundTrips = int.Parse(args[i + 1], CultureInfo.InvariantCulture);
                    break;
                case "--json":
                    json = args[i + 1];
                    break;
            }
        }

        return RunAsync(roundTrips, json).GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync(int roundTrips, string? json)
    {
        var directory = Directory.CreateTempSubdirectory("fastsmr-tls-bench-").FullName;
        try
        {
            CertificateAuthority.Create(directory, [CertificateIdentity.Member(new ReplicaId(1)), CertificateIdentity.Client(1)], TimeSpan.FromDays(1));
            using var server = TlsCredentials.Load(directory, CertificateIdentity.Member(new ReplicaId(1)));
            using var client = TlsCredentials.Load(directory, CertificateIdentity.Client(1));
            var plain = await PingPongAsync(roundTrips, null, null).ConfigureAwait(false);
            var secured = await PingPongAsync(roundTrips, server, client).ConfigureAwait(false);
            var (sealUs, openUs) = await SealAndOpenAsync(server, client).ConfigureAwait(false);
            var result = new Dictionary<string, object>
            {
                ["round_trips"] = roundTrips,
                ["plain_round_trip_us_p50"] = plain.P50,
                ["tls_round_trip_us_p50"] = secured.P50,
                ["plain_round_trip_us_p99"] = plain.P99,
                ["tls_round_trip_us_p99"] = secured.P99,
                ["tls_added_per_round_trip_us_p50"] = Math.Round(secured.P50 - plain.P50, 1),
                ["seal_200B_us"] = Math.Round(sealUs, 2),
                ["open_200B_us"] = Math.Round(openUs, 2),
                ["aes_gcm_seal_200B_us"] = Math.Round(AesGcmSealUs(), 2),
                ["machine"] = $"{Environment.ProcessorCount} cpus, {System.Runtime.InteropServices.RuntimeInformation.OSDescription}",
            };
            var text = JsonSerializer.Serialize(result, JsonOptions);
            Console.WriteLine(text);
            if (json is not null)
            {
                await File.WriteAllTextAsync(json, text).ConfigureAwait(false);
            }

            return 0;
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static async Task<(double P50, double P99)> PingPongAsync(int roundTrips, TlsCredentials? server, TlsCredentials? client)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var dialed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await dialed.ConnectAsync(listener.LocalEndPoint!).ConfigureAwait(false);
        using var accepted = await listener.AcceptAsync().ConfigureAwait(false);
        accepted.NoDelay = true;
        Stream near = new NetworkStream(dialed);
        Stream far = new NetworkStream(accepted);
        if (server is not null && client is not null)
        {
            var serving = server.AcceptAsync(far, CertificateRole.Client, null, CancellationToken.None);
            near = await client.ConnectAsync(near, new ReplicaId(1), CancellationToken.None).ConfigureAwait(false);
            far = (await serving.ConfigureAwait(false)).Stream;
        }

        var echo = Task.Run(async () =>
        {
            var buffer = new byte[64];
            for (var i = 0; i < roundTrips; i++)
            {
                await far.ReadExactlyAsync(buffer).ConfigureAwait(false);
                await far.WriteAsync(buffer).ConfigureAwait(false);
            }
        });
        var message = new byte[64];
        var samples = new double[roundTrips];
        for (var i = 0; i < roundTrips; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await near.WriteAsync(message).ConfigureAwait(false);
            await near.ReadExactlyAsync(message).ConfigureAwait(false);
            samples[i] = Stopwatch.GetElapsedTime(started).TotalMicroseconds;
        }

        await echo.ConfigureAwait(false);
        await near.DisposeAsync().ConfigureAwait(false);
        await far.DisposeAsync().ConfigureAwait(false);
        Array.Sort(samples);
        return (Math.Round(samples[samples.Length / 2], 1), Math.Round(samples[(int)(samples.Length * 0.99)], 1));
    }

    /// <summary>Microseconds per 200 B AES-128-GCM encryption through <see cref="System.Security.Cryptography.AesGcm"/> directly.</summary>
    private static double AesGcmSealUs()
    {
        const int Count = 200_000;
        using var aes = new System.Security.Cryptography.AesGcm(new byte[16], 16);
        var nonce = new byte[12];
        var plain = new byte[200];
        var cipher = new byte[200];
        var tag = new byte[16];
        var started = Stopwatch.GetTimestamp();
        for (var i = 0; i < Count; i++)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteInt64LittleEndian(nonce, i);
            aes.Encrypt(nonce, plain, cipher, tag);
        }

        return Stopwatch.GetElapsedTime(started).TotalMicroseconds / Count;
    }

    /// <summary>Microseconds of CPU per 200 B encryption and per decryption, over an established session.</summary>
    private static async Task<(double Seal, double Open)> SealAndOpenAsync(TlsCredentials server, TlsCredentials client)
    {
        const int Count = 100_000;
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var dialed = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await dialed.ConnectAsync(listener.LocalEndPoint!).ConfigureAwait(false);
        using var accepted = await listener.AcceptAsync().ConfigureAwait(false);
        var serving = server.AcceptAsync(new NetworkStream(accepted), CertificateRole.Client, null, CancellationToken.None);
        await using var near = await client.ConnectAsync(new NetworkStream(dialed), new ReplicaId(1), CancellationToken.None).ConfigureAwait(false);
        var (far, _) = await serving.ConfigureAwait(false);
        await using (far.ConfigureAwait(false))
        {
            var payload = new byte[200];
            var reader = Task.Run(async () =>
            {
                var buffer = new byte[200];
                var started = Stopwatch.GetTimestamp();
                for (var i = 0; i < Count; i++)
                {
                    await far.ReadExactlyAsync(buffer).ConfigureAwait(false);
                }

                return Stopwatch.GetElapsedTime(started).TotalMicroseconds / Count;
            });
            var begin = Stopwatch.GetTimestamp();
            for (var i = 0; i < Count; i++)
            {
                near.Write(payload);
            }

            var sealUs = Stopwatch.GetElapsedTime(begin).TotalMicroseconds / Count;
            return (sealUs, await reader.ConfigureAwait(false));
        }
    }
}
