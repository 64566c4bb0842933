using System.Buffers.Binary;
using System.Diagnostics;
using System.Threading.Channels;
using FastSmr.Client;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Testing.Clusters;
using HdrHistogram;

namespace FastSmr.Testing.Load;

/// <summary>
/// Drives key-value puts against a cluster: C connections, each with P requests in flight (closed loop), or an offered
/// rate (open loop) whose latency is measured from each request's intended send time, so a stall is charged to every
/// request it delayed (coordinated omission corrected).
/// </summary>
internal sealed class LoadGenerator
{
    private const long HighestTrackableMicros = 120_000_000;
    private readonly LoadSettings settings;
    private readonly IReadOnlyList<string> endPoints;
    private readonly TextWriter progress;
    private readonly Dictionary<SubmitStatus, long> errorsByStatus = [];
    private long ops;
    private long errors;
    private long measureFrom;
    private long measureUntil;

    public LoadGenerator(LoadSettings settings, IReadOnlyList<string> endPoints, TextWriter progress)
    {
        settings.Validate();
        this.settings = settings;
        this.endPoints = endPoints;
        this.progress = progress;
    }

    public async Task<LoadReport> RunAsync(TimeSpan warmup, CancellationToken token)
    {
        var (clients, histograms) = CreateClients();
        var allocatedBefore = GC.GetTotalAllocatedBytes(precise: false);
        var gen0Before = GC.CollectionCount(0);
        var start = Stopwatch.GetTimestamp();
        measureFrom = start + (long)(warmup.TotalSeconds * Stopwatch.Frequency);
        measureUntil = measureFrom + settings.Seconds * Stopwatch.Frequency;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(token);
        var reporter = ReportProgressAsync(stop.Token);
        try
        {
            if (settings.Rate > 0)
            {
                await RunOpenLoopAsync(clients, histograms, token).ConfigureAwait(false);
            }
            else
            {
                var workers = new List<Task>();
                for (var i = 0; i < clients.Length; i++)
                {
                    workers.Add(RunClosedLoopAsync(clients[i], histograms[i], i, token));
                }

                await Task.WhenAll(workers).ConfigureAwait(false);
            }
        }
        finally
        {
            await stop.CancelAsync().ConfigureAwait(false);
            await reporter.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            foreach (var client in clients)
            {
                await client.DisposeAsync().ConfigureAwait(false);
            }
        }

        return Report(histograms, GC.GetTotalAllocatedBytes(precise: false) - allocatedBefore, GC.CollectionCount(0) - gen0Before);
    }

    /// <summary>Every client's latencies merged, the counts, and what the generator itself allocated.</summary>
    private LoadReport Report(LongHistogram[] histograms, long generatorAllocated, int generatorGen0)
    {
        var total = new LongHistogram(HighestTrackableMicros, 3);
        foreach (var histogram in histograms)
        {
            total.Add(histogram);
        }

        var byStatus = new Dictionary<string, long>();
        lock (errorsByStatus)
        {
            foreach (var (status, count) in errorsByStatus)
            {
                byStatus[status.ToString()] = count;
            }
        }

        return new LoadReport
        {
            Ops = Interlocked.Read(ref ops),
            Errors = Interlocked.Read(ref errors),
            ErrorsByStatus = byStatus,
            Seconds = settings.Seconds,
            P50Us = total.TotalCount == 0 ? 0 : total.GetValueAtPercentile(50),
            P90Us = total.TotalCount == 0 ? 0 : total.GetValueAtPercentile(90),
            P99Us = total.TotalCount == 0 ? 0 : total.GetValueAtPercentile(99),
            P999Us = total.TotalCount == 0 ? 0 : total.GetValueAtPercentile(99.9),
            MaxUs = total.TotalCount == 0 ? 0 : total.GetMaxValue(),
            GeneratorAllocatedBytes = generatorAllocated,
            GeneratorGen0Collections = generatorGen0,
        };
    }

    /// <summary>One client per connection (each with its own client id and pipeline window), and a histogram each.</summary>
    private (FastSmrClient[] Clients, LongHistogram[] Histograms) CreateClients()
    {
        var clients = new FastSmrClient[settings.Clients];
        var histograms = new LongHistogram[settings.Clients];
        for (var i = 0; i < clients.Length; i++)
        {
            clients[i] = new FastSmrClient(
                new FastSmrClientOptions
                {
                    EndPoints = endPoints,
                    ClusterId = settings.ClusterId,
                    DefaultTimeout = settings.Timeout,
                    InFlightMax = settings.Pipeline,
                    ClientId = (ulong)(i + 1),
                }.Secured(settings.Tls)
            );
            histograms[i] = new LongHistogram(HighestTrackableMicros, 3);
        }

        return (clients, histograms);
    }

    private async Task RunClosedLoopAsync(FastSmrClient client, LongHistogram histogram, int clientIndex, CancellationToken token)
    {
        var lanes = new Task[settings.Pipeline];
        for (var lane = 0; lane < lanes.Length; lane++)
        {
            var seed = (clientIndex * 65_537) + lane;
            lanes[lane] = Task.Run(
                async () =>
                {
                    var random = new Random(seed);
                    var command = new byte[KvCommand.PutSize(8, settings.PayloadBytes)];
                    while (!token.IsCancellationRequested && Stopwatch.GetTimestamp() < measureUntil)
                    {
                        var length = FillPut(command, random);
                        var sent = Stopwatch.GetTimestamp();
                        var result = await client
                            .SubmitAsync(command.AsMemory(0, length), idempotent: false, settings.Timeout)
                            .ConfigureAwait(false);
                        Record(histogram, sent, result.Status);
                    }
                },
                CancellationToken.None
            );
        }

        await Task.WhenAll(lanes).ConfigureAwait(false);
    }

    /// <summary>
    /// Open loop: one dispatcher assigns every intended send time (a fixed schedule at the offered rate, round-robin over
    /// the clients) to its client's queue; each client's <c>Pipeline</c> lanes take times off the queue and send. A
    /// request that waits for a free lane is charged the wait, because latency counts from its intended time. Nothing
    /// spins: the dispatcher thread sleeps between ticks (~1 ms granularity, which can only add to the measured latency).
    /// </summary>
    private async Task RunOpenLoopAsync(FastSmrClient[] clients, LongHistogram[] histograms, CancellationToken token)
    {
        var queues = new Channel<long>[clients.Length];
        var lanes = new List<Task>();
        for (var c = 0; c < clients.Length; c++)
        {
            queues[c] = Channel.CreateUnbounded<long>(new UnboundedChannelOptions { SingleWriter = true });
            for (var lane = 0; lane < settings.Pipeline; lane++)
            {
                lanes.Add(RunOpenLaneAsync(clients[c], histograms[c], queues[c].Reader, (c * 65_537) + lane));
            }
        }

        // The schedule runs on a thread of its own that sleeps 1 ms at a time (Thread.Sleep is nanosleep here: ~1.06 ms),
        // not on a thread-pool timer: Task.Delay(1) on a busy pool fired several milliseconds late, and the generator's
        // lateness was charged to the system under test (measured: p50 3.3 ms at 5,000/s against one in-memory replica).
        var interval = Stopwatch.Frequency / settings.Rate;
        var dispatcher = new Thread(() =>
        {
            var intended = (double)Stopwatch.GetTimestamp();
            var next = 0;
            try
            {
                while (!token.IsCancellationRequested && intended < measureUntil)
                {
                    var now = Stopwatch.GetTimestamp();
                    while (intended <= now && intended < measureUntil)
                    {
                        queues[next].Writer.TryWrite((long)intended);
                        next = (next + 1) % queues.Length;
                        intended += interval;
                    }

                    Thread.Sleep(1);
                }
            }
            finally
            {
                foreach (var queue in queues)
                {
                    queue.Writer.TryComplete();
                }
            }
        })
        {
            IsBackground = true,
            Name = "loadgen-schedule",
        };
        dispatcher.Start();
        await Task.Run(dispatcher.Join, CancellationToken.None).ConfigureAwait(false);
        await Task.WhenAll(lanes).ConfigureAwait(false);
    }

    private async Task RunOpenLaneAsync(FastSmrClient client, LongHistogram histogram, ChannelReader<long> queue, int seed)
    {
        await Task.Yield();
        var random = new Random(seed);
        var command = new byte[KvCommand.PutSize(8, settings.PayloadBytes)];
        await foreach (var intended in queue.ReadAllAsync().ConfigureAwait(false))
        {
            var length = FillPut(command, random);
            var result = await client.SubmitAsync(command.AsMemory(0, length), idempotent: false, settings.Timeout).ConfigureAwait(false);
            Record(histogram, intended, result.Status);
        }
    }

    private int FillPut(byte[] command, Random random)
    {
        Span<byte> key = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(key, random.Next(settings.Keys));
        var value = command.AsSpan(KvCommand.PutSize(8, 0), settings.PayloadBytes);
        random.NextBytes(value);
        // The value is written in place after the header, so only the header is encoded.
        return KvCommand.WritePut(command, key, value);
    }

    private void Record(LongHistogram histogram, long started, SubmitStatus status)
    {
        var now = Stopwatch.GetTimestamp();
        if (started < measureFrom || started >= measureUntil)
        {
            return; // warm-up or drain
        }

        if (status != SubmitStatus.Ok)
        {
            Interlocked.Increment(ref errors);
            lock (errorsByStatus)
            {
                errorsByStatus[status] = errorsByStatus.GetValueOrDefault(status) + 1;
            }

            return;
        }

        Interlocked.Increment(ref ops);
        var micros = Math.Clamp((now - started) * 1_000_000 / Stopwatch.Frequency, 1, HighestTrackableMicros);
        lock (histogram)
        {
            histogram.RecordValue(micros);
        }
    }

    private async Task ReportProgressAsync(CancellationToken token)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        long lastOps = 0;
        while (!token.IsCancellationRequested)
        {
            try
            {
                await timer.WaitForNextTickAsync(token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var now = Stopwatch.GetTimestamp();
            var current = Interlocked.Read(ref ops);
            var phase = now < measureFrom ? "warm-up" : "measuring";
            var elapsed = Math.Max(0, (now - measureFrom) / (double)Stopwatch.Frequency);
            await progress
                .WriteLineAsync(
                    FormattableString.Invariant($"  [{phase}] t={elapsed, 5:F1}s  ops={current, 9}  ")
                        + FormattableString.Invariant($"rate={current - lastOps, 8}/s  errors={Interlocked.Read(ref errors)}")
                )
                .ConfigureAwait(false);
            lastOps = current;
        }
    }
}
