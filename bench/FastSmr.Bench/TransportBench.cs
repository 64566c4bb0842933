using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using DotNext.Net.Multiplexing;

namespace FastSmr.Bench;

/// <summary>
/// <c>transport [--seconds S] [--json FILE]</c>: a pipelined replication stream over 127.0.0.1 — the sender keeps up to
/// 16 length-prefixed batches in flight, the receiver answers each with an 8-byte acknowledgement — for batches of
/// 64 B, 4 KiB, 64 KiB and 1 MiB, over (a) a plain socket with System.IO.Pipelines and (b) a stream of DotNext's
/// <c>TcpMultiplexedClient</c> / <c>TcpMultiplexedListener</c>, in the same run. Both ends run in this process.
/// </summary>
internal static class TransportBench
{
    private const int Window = 16;

    // 64 KiB reads: the default (4 KiB) costs a 64 KiB batch sixteen reads.
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 64 * 1024, minimumReadSize: 16 * 1024);
    private static readonly int[] Sizes = [64, 4096, 65536, 1 << 20];
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>The receiving end in its own process: listens (printing its port), echoes acknowledgements until the sender closes.</summary>
    public static int Echo(string stack)
    {
        try
        {
            return EchoAsync(stack).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or SocketException)
        {
            return 0; // the sender went away mid-read: the end of the run
        }
    }

    private static async Task<int> EchoAsync(string stack)
    {
        using var stop = new CancellationTokenSource();
        if (stack == "dotnext-multiplexing")
        {
            var port = FreePort();
            await using var listener = new TcpMultiplexedListener(new IPEndPoint(IPAddress.Loopback, port), new TcpMultiplexedListener.Options { BufferOptions = Buffers });
            await listener.StartAsync().ConfigureAwait(false);
            Console.WriteLine(port.ToString(CultureInfo.InvariantCulture));
            var pipe = await listener.AcceptAsync().ConfigureAwait(false);
            await Receive(pipe, stop.Token).ConfigureAwait(false);
            return 0;
        }

        using var socketListener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socketListener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        socketListener.Listen(1);
        Console.WriteLine(((IPEndPoint)socketListener.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture));
        using var server = await socketListener.AcceptAsync().ConfigureAwait(false);
        server.NoDelay = true;
        await using var stream = new NetworkStream(server, ownsSocket: false);
        if (stack.EndsWith("coalescing", StringComparison.Ordinal))
        {
            await using var coalescing = new CoalescingPipe(stream);
            await Receive(coalescing, stop.Token).ConfigureAwait(false);
        }
        else
        {
            await Receive(new StreamPipe(stream), stop.Token).ConfigureAwait(false);
        }

        return 0;
    }

    public static int Run(string[] args)
    {
        var seconds = 2.0;
        string? json = null;
        var twoProcesses = false;
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--seconds": seconds = double.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--json": json = args[++i]; break;
                case "--two-processes": twoProcesses = true; break;
                default: Console.Error.WriteLine("usage: transport [--seconds S] [--two-processes] [--json FILE]"); return 2;
            }
        }

        Console.WriteLine("| stack | batch bytes | batches/s | MB/s | ack p50 µs | ack p99 µs |");
        Console.WriteLine("|---|---|---|---|---|---|");
        var rows = new List<Dictionary<string, object>>();
        var stalled = false;
        foreach (var size in Sizes)
        {
            foreach (var stack in new[] { "socket+pipelines", "socket+pipelines, coalescing", "dotnext-multiplexing" })
            {
                var run = twoProcesses ? RunAgainstChild(stack, size, seconds) : stack switch
                {
                    "socket+pipelines" => RunSockets(size, seconds, coalesce: false),
                    "socket+pipelines, coalescing" => RunSockets(size, seconds, coalesce: true),
                    _ => RunMultiplexed(size, seconds),
                };
                if (!run.Wait(TimeSpan.FromSeconds(seconds + 15)))
                {
                    // Reported, not hidden: the row never finished (the stream stopped moving).
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {stack} | {size} | stalled | | | |"));
                    rows.Add(new Dictionary<string, object> { ["stack"] = stack, ["batch_bytes"] = size, ["stalled"] = true });
                    stalled = true;
                    continue;
                }

                var result = run.Result;
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {stack} | {size} | {result.PerSecond:F0} | {result.PerSecond * size / 1e6:F1} | {result.P50:F0} | {result.P99:F0} |"));
                rows.Add(new Dictionary<string, object>
                {
                    ["stack"] = stack,
                    ["batch_bytes"] = size,
                    ["batches_per_sec"] = Math.Round(result.PerSecond),
                    ["mb_per_sec"] = Math.Round(result.PerSecond * size / 1e6, 1),
                    ["ack_p50_us"] = Math.Round(result.P50, 1),
                    ["ack_p99_us"] = Math.Round(result.P99, 1),
                });
            }
        }

        if (json is not null)
        {
            var report = new Dictionary<string, object>
            {
                ["benchmark"] = "transport",
                ["rows"] = rows,
                ["settings"] = new Dictionary<string, object> { ["seconds_per_row"] = seconds, ["window"] = Window, ["ends"] = twoProcesses ? "two processes (the receiver a child), 127.0.0.1, TCP_NODELAY" : "one process, two sockets over 127.0.0.1, TCP_NODELAY", ["reader_buffer_bytes"] = 64 * 1024 },
                ["durability"] = "none (network only)",
                ["machine"] = LogBench.Machine(),
                ["commit"] = Environment.GetEnvironmentVariable("FASTSMR_COMMIT") ?? "unknown",
                ["measured_at"] = DateTimeOffset.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            File.WriteAllText(json, JsonSerializer.Serialize(report, JsonOptions));
            Console.WriteLine("transport: wrote " + json);
        }

        if (stalled)
        {
            Environment.Exit(3); // a stalled row leaves its tasks behind: do not wait for them
        }

        return 0;
    }

    private static readonly PipeOptions Buffers = new(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20);

    private static async Task<Result> RunAgainstChild(string stack, int size, double seconds)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath ?? "dotnet") { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) == "dotnet")
        {
            info.ArgumentList.Add(typeof(TransportBench).Assembly.Location);
        }

        info.ArgumentList.Add("transport-echo");
        info.ArgumentList.Add(stack);
        using var child = Process.Start(info)!;
        try
        {
            var port = int.Parse(await child.StandardOutput.ReadLineAsync().ConfigureAwait(false) ?? throw new InvalidOperationException("the echo process printed no port"), CultureInfo.InvariantCulture);
            var endPoint = new IPEndPoint(IPAddress.Loopback, port);
            if (stack == "dotnext-multiplexing")
            {
                await using var client = new TcpMultiplexedClient(endPoint, new TcpMultiplexedClient.Options { BufferOptions = Buffers });
                await client.StartAsync().ConfigureAwait(false);
                var pipe = await client.OpenStreamAsync().ConfigureAwait(false);
                var result = await Measure(pipe, null, size, seconds).ConfigureAwait(false);
                await pipe.Output.CompleteAsync().ConfigureAwait(false);
                return result;
            }

            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(endPoint).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            if (stack.EndsWith("coalescing", StringComparison.Ordinal))
            {
                await using var coalescing = new CoalescingPipe(stream);
                return await Measure(coalescing, null, size, seconds).ConfigureAwait(false);
            }

            return await Measure(new StreamPipe(stream), null, size, seconds).ConfigureAwait(false);
        }
        finally
        {
            if (!child.WaitForExit(5_000))
            {
                child.Kill(); // by its id; it is ours
            }
        }
    }

    private static async Task<Result> RunSockets(int size, double seconds, bool coalesce)
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        using var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accept = listener.AcceptAsync();
        await client.ConnectAsync(listener.LocalEndPoint!).ConfigureAwait(false);
        using var server = await accept.ConfigureAwait(false);
        server.NoDelay = true;
        await using var clientStream = new NetworkStream(client, ownsSocket: false);
        await using var serverStream = new NetworkStream(server, ownsSocket: false);
        if (!coalesce)
        {
            return await Measure(new StreamPipe(clientStream), Task.FromResult<IDuplexPipe>(new StreamPipe(serverStream)), size, seconds).ConfigureAwait(false);
        }

        // Writers fill an in-memory pipe; one loop per socket sends whatever has gathered in one write (as DotNext's
        // output multiplexer does).
        await using var sender = new CoalescingPipe(clientStream);
        await using var receiver = new CoalescingPipe(serverStream);
        return await Measure(sender, Task.FromResult<IDuplexPipe>(receiver), size, seconds).ConfigureAwait(false);
    }

    private static async Task<Result> RunMultiplexed(int size, double seconds)
    {
        var port = FreePort();
        var endPoint = new IPEndPoint(IPAddress.Loopback, port);
        // A reader that consumes whole batches only needs the pipe to hold a whole batch: with the default pause
        // threshold (64 KiB) a batch of 64 KiB or more deadlocks — the writer waits for the reader, the reader for the
        // rest of the batch. The threshold must exceed the largest batch.
        var buffers = Buffers;
        await using var listener = new TcpMultiplexedListener(endPoint, new TcpMultiplexedListener.Options { BufferOptions = buffers });
        await listener.StartAsync().ConfigureAwait(false);
        await using var client = new TcpMultiplexedClient(endPoint, new TcpMultiplexedClient.Options { BufferOptions = buffers });
        await client.StartAsync().ConfigureAwait(false);
        var sender = await client.OpenStreamAsync().ConfigureAwait(false);
        var receiver = listener.AcceptAsync().AsTask(); // the listener sees the stream with its first frame
        try
        {
            return await Measure(sender, receiver, size, seconds).ConfigureAwait(false);
        }
        finally
        {
            await sender.Output.CompleteAsync().ConfigureAwait(false);
            await (await receiver.ConfigureAwait(false)).Output.CompleteAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The sender writes [u32 length][batch] with up to <see cref="Window"/> unacknowledged; the receiver answers each with [u64 sequence].</summary>
    private static async Task<Result> Measure(IDuplexPipe sender, Task<IDuplexPipe>? receiver, int size, double seconds)
    {
        var payload = new byte[size];
        new Random(size).NextBytes(payload);
        using var stop = new CancellationTokenSource();
        var echo = receiver is null ? Task.CompletedTask : Task.Run(async () => await Receive(await receiver.ConfigureAwait(false), stop.Token).ConfigureAwait(false));
        var sentAt = new long[Window];
        var latencies = new List<double>(200_000);
        long sent = 0, acked = 0;
        var watch = Stopwatch.StartNew();
        var warmUpUntil = TimeSpan.FromSeconds(0.3);
        var window = new SemaphoreSlim(Window);
        var acks = Task.Run(async () =>
        {
            while (true)
            {
                var result = await sender.Input.ReadAsync().ConfigureAwait(false);
                var buffer = result.Buffer;
                while (buffer.Length >= 8)
                {
                    var now = Stopwatch.GetTimestamp();
                    if (watch.Elapsed > warmUpUntil)
                    {
                        latencies.Add(Stopwatch.GetElapsedTime(sentAt[acked % Window], now).TotalMicroseconds);
                    }

                    acked++;
                    buffer = buffer.Slice(8);
                    window.Release();
                }

                sender.Input.AdvanceTo(buffer.Start, buffer.End);
                if (result.IsCompleted)
                {
                    return;
                }
            }
        });
        long measuredFrom = 0;
        while (watch.Elapsed.TotalSeconds < seconds + warmUpUntil.TotalSeconds)
        {
            await window.WaitAsync().ConfigureAwait(false);
            if (measuredFrom == 0 && watch.Elapsed > warmUpUntil)
            {
                measuredFrom = sent;
            }

            var memory = sender.Output.GetMemory(4 + size);
            BinaryPrimitives.WriteUInt32LittleEndian(memory.Span, (uint)size);
            payload.CopyTo(memory.Span[4..]);
            sender.Output.Advance(4 + size);
            sentAt[sent % Window] = Stopwatch.GetTimestamp();
            sent++;
            await sender.Output.FlushAsync().ConfigureAwait(false);
        }

        var elapsed = watch.Elapsed.TotalSeconds - warmUpUntil.TotalSeconds;
        for (var i = 0; i < Window; i++)
        {
            await window.WaitAsync().ConfigureAwait(false); // every batch acknowledged
        }

        stop.Cancel();
        var measured = latencies.ToArray();
        Array.Sort(measured);
        double P(double q) => measured.Length == 0 ? 0 : measured[Math.Min(measured.Length - 1, (int)Math.Ceiling(q * measured.Length) - 1)];
        return new Result((sent - measuredFrom) / elapsed, P(0.5), P(0.99));
    }

    private static async Task Receive(IDuplexPipe pipe, CancellationToken token)
    {
        long sequence = 0;
        var header = new byte[4];
        try
        {
            while (!token.IsCancellationRequested)
            {
                var result = await pipe.Input.ReadAsync(token).ConfigureAwait(false);
                var buffer = result.Buffer;
                var answered = false;
                while (buffer.Length >= 4)
                {
                    buffer.Slice(0, 4).CopyTo(header);
                    var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
                    if (buffer.Length < 4 + length)
                    {
                        break;
                    }

                    buffer = buffer.Slice(4 + length);
                    BinaryPrimitives.WriteInt64LittleEndian(pipe.Output.GetSpan(8), ++sequence);
                    pipe.Output.Advance(8);
                    answered = true;
                }

                pipe.Input.AdvanceTo(buffer.Start, buffer.End);
                if (answered)
                {
                    await pipe.Output.FlushAsync(token).ConfigureAwait(false);
                }

                if (result.IsCompleted)
                {
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static int FreePort()
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        probe.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)probe.LocalEndPoint!).Port;
    }

    private sealed class StreamPipe(Stream stream) : IDuplexPipe
    {
        public PipeReader Input { get; } = PipeReader.Create(stream, ReaderOptions);

        public PipeWriter Output { get; } = PipeWriter.Create(stream);
    }

    private sealed class CoalescingPipe : IDuplexPipe, IAsyncDisposable
    {
        private readonly Pipe outgoing = new(new PipeOptions(pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20));
        private readonly Task sending;

        public CoalescingPipe(NetworkStream stream)
        {
            Input = PipeReader.Create(stream, ReaderOptions);
            var socket = stream.Socket;
            var gathered = new List<ArraySegment<byte>>();
            sending = Task.Run(async () =>
            {
                while (true)
                {
                    var result = await outgoing.Reader.ReadAsync().ConfigureAwait(false);

                    // One gathered send for everything that accumulated, however many pipe segments it spans.
                    gathered.Clear();
                    foreach (var segment in result.Buffer)
                    {
                        gathered.Add(System.Runtime.InteropServices.MemoryMarshal.TryGetArray(segment, out var array) ? array : new ArraySegment<byte>(segment.ToArray()));
                    }

                    var total = (int)result.Buffer.Length;
                    for (var sent = 0; sent < total;)
                    {
                        sent += await socket.SendAsync(Skip(gathered, sent), SocketFlags.None).ConfigureAwait(false);
                    }

                    outgoing.Reader.AdvanceTo(result.Buffer.End);
                    if (result.IsCompleted)
                    {
                        return;
                    }
                }
            });
        }

        public PipeReader Input { get; }

        public PipeWriter Output => outgoing.Writer;

        private static List<ArraySegment<byte>> Skip(List<ArraySegment<byte>> segments, int bytes)
        {
            if (bytes == 0)
            {
                return segments;
            }

            var rest = new List<ArraySegment<byte>>();
            foreach (var segment in segments)
            {
                if (bytes >= segment.Count)
                {
                    bytes -= segment.Count;
                    continue;
                }

                rest.Add(segment.Slice(bytes));
                bytes = 0;
            }

            return rest;
        }

        public async ValueTask DisposeAsync()
        {
            await outgoing.Writer.CompleteAsync().ConfigureAwait(false);
            await sending.WaitAsync(TimeSpan.FromSeconds(5)).ConfigureAwait(false);
        }
    }

    private readonly record struct Result(double PerSecond, double P50, double P99);
}
