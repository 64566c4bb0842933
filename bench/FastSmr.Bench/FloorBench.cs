using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace FastSmr.Bench;

/// <summary>
/// <c>floor [--seconds S] [--dir DIR] [--json FILE]</c>: what one durable 3-replica commit seen by a client cannot beat on
/// this machine, measured in one run: the loopback round trip between two processes with blocking receives (what a
/// replica pays without spinning), and a 4 KiB overwrite + fdatasync of a preallocated, zero-filled file. The commit
/// floor is client round trip + max(leader fdatasync, follower round trip + follower fdatasync).
/// </summary>
internal static class FloorBench
{
    private const int MessageBytes = 64;
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static int Run(string[] args)
    {
        var seconds = 3.0;
        string? json = null;
        var directory = Path.GetTempPath();
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--json": json = args[++i]; break;
                case "--dir": directory = args[++i]; break;
                default: Console.Error.WriteLine("usage: floor [--seconds S] [--dir DIR] [--json FILE]"); return 2;
            }
        }

        var rtt = RoundTrips(seconds);
        var sync = Overwrites(directory, seconds);
        var floor = rtt.P50 + Math.Max(sync.P50, rtt.P50 + sync.P50);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"loopback round trip (2 processes, blocking, {MessageBytes} B): p50 {rtt.P50:F1} µs, p99 {rtt.P99:F1} µs ({rtt.Count} round trips)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"4 KiB overwrite + fdatasync (zero-filled file): p50 {sync.P50:F1} µs, p99 {sync.P99:F1} µs ({sync.Count} syncs)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"commit floor p50: {floor:F1} µs = rtt + max(fdatasync, rtt + fdatasync)"));
        if (json is not null)
        {
            var report = new Dictionary<string, object>
            {
                ["rtt_us"] = new Dictionary<string, object> { ["p50"] = Math.Round(rtt.P50, 1), ["p99"] = Math.Round(rtt.P99, 1), ["count"] = rtt.Count },
                ["fdatasync_4k_us"] = new Dictionary<string, object> { ["p50"] = Math.Round(sync.P50, 1), ["p99"] = Math.Round(sync.P99, 1), ["count"] = sync.Count },
                ["commit_floor_us_p50"] = Math.Round(floor, 1),
                ["settings"] = new Dictionary<string, object> { ["seconds_each"] = seconds, ["message_bytes"] = MessageBytes, ["directory"] = Path.GetFullPath(directory), ["transport"] = "TCP over 127.0.0.1, TCP_NODELAY, blocking Send/Receive, echo in a second process" },
                ["durability"] = "fdatasync after each 4 KiB overwrite",
                ["machine"] = LogBench.Machine(),
                ["commit"] = Environment.GetEnvironmentVariable("FASTSMR_COMMIT") ?? "unknown",
                ["measured_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(report, JsonOptions));
            Console.WriteLine("floor: wrote " + json);
        }

        return 0;
    }

    /// <summary>The echo side, in its own process: answers every message with the same bytes until the peer closes.</summary>
    public static int Echo()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        Console.WriteLine(((IPEndPoint)listener.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture));
        using var socket = listener.Accept();
        socket.NoDelay = true;
        var buffer = new byte[MessageBytes];
        while (ReceiveExactly(socket, buffer))
        {
            socket.Send(buffer);
        }

        return 0;
    }

    private static Result RoundTrips(double seconds)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            info.ArgumentList.Add(typeof(FloorBench).Assembly.Location);
        }

        info.ArgumentList.Add("floor-echo");
        using var echo = Process.Start(info)!;
        try
        {
            var port = int.Parse(echo.StandardOutput.ReadLine() ?? throw new InvalidOperationException("the echo process printed no port"), CultureInfo.InvariantCulture);
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            socket.Connect(new IPEndPoint(IPAddress.Loopback, port));
            var message = new byte[MessageBytes];
            var reply = new byte[MessageBytes];
            return Timed(seconds, () =>
            {
                socket.Send(message);
                if (!ReceiveExactly(socket, reply))
                {
                    throw new IOException("the echo process closed the connection");
                }
            });
        }
        finally
        {
            if (!echo.WaitForExit(5_000))
            {
                echo.Kill();
            }
        }
    }

    private static Result Overwrites(string directory, double seconds)
    {
        var path = Path.Combine(directory, "fastsmr-floor-" + Environment.ProcessId.ToString(CultureInfo.InvariantCulture) + ".dat");
        try
        {
            using (var stream = new FileStream(path, FileMode.CreateNew, FileAccess.Write))
            {
                stream.Write(new byte[1 << 20]); // zero-filled and synced: written extents, nothing to convert
                stream.Flush(flushToDisk: true);
            }

            using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
            var block = new byte[4096];
            new Random(4096).NextBytes(block);
            var offset = 0L;
            return Timed(seconds, () =>
            {
                RandomAccess.Write(file, block, offset);
                offset = (offset + block.Length) % (1 << 20);
                if (Timing.Fdatasync(file) != 0)
                {
                    throw new IOException("fdatasync failed");
                }
            });
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static bool ReceiveExactly(Socket socket, byte[] buffer)
    {
        for (var read = 0; read < buffer.Length;)
        {
            var n = socket.Receive(buffer, read, buffer.Length - read, SocketFlags.None);
            if (n == 0)
            {
                return false;
            }

            read += n;
        }

        return true;
    }

    private static Result Timed(double seconds, Action action)
    {
        var latencies = Timing.Timed(seconds, action, warmUp: 200);
        latencies.Sort();
        return new Result(Timing.Percentile(latencies, 0.5), Timing.Percentile(latencies, 0.99), latencies.Count);
    }

    private readonly record struct Result(double P50, double P99, int Count);
}
