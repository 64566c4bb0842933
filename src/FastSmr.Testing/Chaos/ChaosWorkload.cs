using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using FastSmr.Client;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Security;
using FastSmr.Testing.Clusters;
using FastSmr.Verification;

namespace FastSmr.Testing.Chaos;

/// <summary>
/// The clients of a chaos run. Register clients run put / get / delete / compare-and-set over a few live keys, so
/// operations really conflict; a key is retired after a bounded number of operations so the checker's search stays
/// small. Set clients write a fresh key each time; every acknowledged one is read back at the end. Every client has one
/// operation in flight, every written value is unique, and every operation lands in one history with times from one
/// monotonic clock.
/// </summary>
internal sealed class ChaosWorkload
{
    private readonly TlsCredentials? tls;
    private readonly IReadOnlyList<string> endPoints;
    private readonly ulong clusterId;
    private readonly int seed;
    private readonly TimeSpan timeout;
    private readonly KeySpace keys;
    private readonly ConcurrentQueue<KvOperation> history = new();
    private readonly ConcurrentQueue<(string Key, string Value)> ackedSetWrites = new();
    private readonly ConcurrentDictionary<string, long> statuses = new();
    private readonly List<Task> clients = [];
    private volatile bool stopping;
    private long lastOkWriteInvoke = long.MinValue;
    private long ok;
    private long failed;
    private long unknown;
    private long unknownSetWrites;
    private long overruns;
    private long worstOverrunNanos;

    public ChaosWorkload(
        IReadOnlyList<string> endPoints,
        ulong clusterId,
        int seed,
        TimeSpan timeout,
        int keySlots,
        int opsPerKey,
        TlsCredentials? tls
    )
    {
        this.tls = tls;
        this.endPoints = endPoints;
        this.clusterId = clusterId;
        this.seed = seed;
        this.timeout = timeout;
        keys = new KeySpace(keySlots, opsPerKey);
    }

    /// <summary>The one clock of the history, in nanoseconds.</summary>
    public static long Now() => (long)(Stopwatch.GetTimestamp() * (1e9 / Stopwatch.Frequency));

    /// <summary>The invocation time of the latest acknowledged write.</summary>
    public long LastOkWriteInvoke => Interlocked.Read(ref lastOkWriteInvoke);

    public long Ok => Interlocked.Read(ref ok);

    public long Failed => Interlocked.Read(ref failed);

    public long Unknown => Interlocked.Read(ref unknown);

    public long UnknownSetWrites => Interlocked.Read(ref unknownSetWrites);

    public int AckedSetWrites => ackedSetWrites.Count;

    /// <summary>Operations that returned more than a second after their deadline.</summary>
    public long DeadlineOverruns => Interlocked.Read(ref overruns);

    public TimeSpan WorstOverrun => TimeSpan.FromTicks(Interlocked.Read(ref worstOverrunNanos) / 100);

    /// <summary>Outcomes by client status.</summary>
    public IReadOnlyDictionary<string, long> Statuses => statuses;

    /// <summary>Every operation so far.</summary>
    public List<KvOperation> History() => [.. history];

    /// <summary>Starts <paramref name="registerClients"/> register clients and <paramref name="setClients"/> set clients.</summary>
    public void Start(int registerClients, int setClients)
    {
        for (var i = 0; i < registerClients; i++)
        {
            var client = i;
            clients.Add(Task.Run(() => RegisterClientAsync(client)));
        }

        for (var i = 0; i < setClients; i++)
        {
            var client = registerClients + i;
            clients.Add(Task.Run(() => SetClientAsync(client)));
        }
    }

    /// <summary>Stops the clients after their operation in flight (each is bounded by its deadline).</summary>
    public async Task StopAsync()
    {
        stopping = true;
        await Task.WhenAll(clients).ConfigureAwait(false);
    }

    /// <summary>
    /// Reads back every acknowledged set write with linearizable reads (retrying reads that fail), records the reads in
    /// the history, and returns the writes that are missing or hold another value, and the ones that could not be read.
    /// </summary>
    public async Task<(List<string> Missing, List<string> Unreadable)> ReadBackAsync(int readers, TimeSpan budget)
    {
        var work = new ConcurrentQueue<(string Key, string Value)>(ackedSetWrites);
        var missing = new ConcurrentBag<string>();
        var unreadable = new ConcurrentBag<string>();
        var deadline = Stopwatch.StartNew();
        var tasks = Enumerable
            .Range(0, readers)
            .Select(r =>
                Task.Run(async () =>
                {
                    var client = NewClient(10_000 + r);
                    await using (client.ConfigureAwait(false))
                    {
                        while (work.TryDequeue(out var item))
                        {
                            var found = false;
                            while (!found && deadline.Elapsed < budget)
                            {
                                var invoke = Now();
                                var result = await client
                                    .ReadAsync(KvCommand.Get(Encoding.UTF8.GetBytes(item.Key)), ReadConsistency.Linearizable, timeout)
                                    .ConfigureAwait(false);
                                if (result.Status != SubmitStatus.Ok)
                                {
                                    await Task.Delay(50).ConfigureAwait(false); // refused at once (Busy, no leader): do not spin
                                    continue;
                                }

                                var value = DecodeGet(result.Output);
                                history.Enqueue(
                                    new KvOperation
                                    {
                                        Client = 10_000 + r,
                                        Invoke = invoke,
                                        Return = Now(),
                                        Kind = KvOperationKind.Get,
                                        Key = item.Key,
                                        Status = OperationStatus.Ok,
                                        OutputValue = value,
                                    }
                                );
                                found = true;
                                if (!string.Equals(value, item.Value, StringComparison.Ordinal))
                                {
                                    missing.Add(item.Key + " (acknowledged " + item.Value + ", read " + (value ?? "<absent>") + ")");
                                }
                            }

                            if (!found)
                            {
                                unreadable.Add(item.Key);
                            }
                        }
                    }
                })
            )
            .ToArray();
        await Task.WhenAll(tasks).ConfigureAwait(false);
        return ([.. missing], [.. unreadable]);
    }

    private FastSmrClient NewClient(int client) =>
        new(
            new FastSmrClientOptions
            {
                EndPoints = endPoints,
                ClusterId = clusterId,
                DefaultTimeout = timeout,
                ConnectTimeout = TimeSpan.FromSeconds(1),
                ClientId = ((uint)seed << 20) | (uint)(client + 1), // 32 bits: with TLS the upper half is the certificate's
            }.Secured(tls)
        );

    private async Task RegisterClientAsync(int clientNumber)
    {
        var random = new Random(unchecked((seed * 104_729) + clientNumber));
        var client = NewClient(clientNumber);
        await using (client.ConfigureAwait(false))
        {
            long n = 0;
            while (!stopping)
            {
                var (key, last) = keys.Take(random);
                var roll = random.Next(100);
                var value = string.Create(CultureInfo.InvariantCulture, $"{clientNumber}.{n++}");
                var operation = roll switch
                {
                    < 35 => new KvOperation
                    {
                        Client = clientNumber,
                        Kind = KvOperationKind.Get,
                        Key = key,
                    },
                    < 65 => new KvOperation
                    {
                        Client = clientNumber,
                        Kind = KvOperationKind.Put,
                        Key = key,
                        Value = value,
                    },
                    < 88 => new KvOperation
                    {
                        Client = clientNumber,
                        Kind = KvOperationKind.CompareAndSet,
                        Key = key,
                        Expected = random.Next(4) == 0 ? null : last,
                        Value = value,
                    },
                    _ => new KvOperation
                    {
                        Client = clientNumber,
                        Kind = KvOperationKind.Delete,
                        Key = key,
                    },
                };
                var done = await ExecuteAsync(client, operation).ConfigureAwait(false);
                if (done.Status == OperationStatus.Ok)
                {
                    keys.Observe(
                        key,
                        done.Kind switch
                        {
                            KvOperationKind.Get => done.OutputValue,
                            KvOperationKind.Put => done.Value,
                            KvOperationKind.Delete => null,
                            _ => done.OutputFlag ? done.Value : last,
                        }
                    );
                }
            }
        }
    }

    private async Task SetClientAsync(int clientNumber)
    {
        var client = NewClient(clientNumber);
        await using (client.ConfigureAwait(false))
        {
            long n = 0;
            while (!stopping)
            {
                var key = string.Create(CultureInfo.InvariantCulture, $"s{clientNumber}-{n}");
                var value = string.Create(CultureInfo.InvariantCulture, $"v{seed}-{clientNumber}-{n++}");
                var done = await ExecuteAsync(
                        client,
                        new KvOperation
                        {
                            Client = clientNumber,
                            Kind = KvOperationKind.Put,
                            Key = key,
                            Value = value,
                        }
                    )
                    .ConfigureAwait(false);
                if (done.Status == OperationStatus.Ok)
                {
                    ackedSetWrites.Enqueue((key, value));
                }
                else if (done.Status == OperationStatus.Unknown)
                {
                    Interlocked.Increment(ref unknownSetWrites);
                }
            }
        }
    }

    /// <summary>Runs one operation, records it, and returns it with its outcome.</summary>
    private async Task<KvOperation> ExecuteAsync(FastSmrClient client, KvOperation operation)
    {
        var isRead = operation.Kind == KvOperationKind.Get;
        var invoke = Now();
        ClientResult result;
        try
        {
            result = await SendAsync(client, operation).ConfigureAwait(false);
        }
        catch (Exception e)
            when (e is IOException or TimeoutException or OperationCanceledException or ObjectDisposedException or ProtocolException)
        {
            result = new ClientResult(SubmitStatus.Unknown, [], 0);
        }

        var returned = Now();
        var overrun = returned - invoke - (long)timeout.TotalNanoseconds - 1_000_000_000L;
        if (overrun > 0)
        {
            Interlocked.Increment(ref overruns);
            InterlockedMax(ref worstOverrunNanos, overrun);
        }

        statuses.AddOrUpdate(result.Status.ToString(), 1, static (_, c) => c + 1);
        KvOperation done;
        if (result.Status == SubmitStatus.Ok)
        {
            var output = result.Output;
            done = operation with
            {
                Invoke = invoke,
                Return = returned,
                Status = OperationStatus.Ok,
                OutputValue = isRead ? DecodeGet(output) : null,
                OutputFlag = output.Length > 0 && output[0] == (byte)KvResult.Ok,
            };
            Interlocked.Increment(ref ok);
            if (!isRead)
            {
                InterlockedMax(ref lastOkWriteInvoke, invoke);
            }
        }
        else if (isRead || result.Status.IsNotAppended())
        {
            // A read changes nothing, and a command that was never appended cannot take effect: both are failures.
            done = operation with { Invoke = invoke, Return = returned, Status = OperationStatus.Fail };
            Interlocked.Increment(ref failed);
        }
        else
        {
            done = operation with { Invoke = invoke, Return = returned, Status = OperationStatus.Unknown };
            Interlocked.Increment(ref unknown);
        }

        history.Enqueue(done);
        return done;
    }

    /// <summary>Sends one operation: reads linearizable, writes as commands (none marked idempotent).</summary>
    private async Task<ClientResult> SendAsync(FastSmrClient client, KvOperation operation)
    {
        var key = Encoding.UTF8.GetBytes(operation.Key);
        return operation.Kind switch
        {
            KvOperationKind.Get => await client.ReadAsync(KvCommand.Get(key), ReadConsistency.Linearizable, timeout).ConfigureAwait(false),
            KvOperationKind.Put => await client
                .SubmitAsync(KvCommand.Put(key, Encoding.UTF8.GetBytes(operation.Value!)), timeout: timeout)
                .ConfigureAwait(false),
            KvOperationKind.Delete => await client.SubmitAsync(KvCommand.Delete(key), timeout: timeout).ConfigureAwait(false),
            _ => await client
                .SubmitAsync(
                    KvCommand.CompareAndSet(
                        key,
                        operation.Expected is null ? null : Encoding.UTF8.GetBytes(operation.Expected),
                        Encoding.UTF8.GetBytes(operation.Value!)
                    ),
                    timeout: timeout
                )
                .ConfigureAwait(false),
        };
    }

    private static string? DecodeGet(byte[] output) =>
        output.Length > 0 && output[0] == (byte)KvResult.Ok ? Encoding.UTF8.GetString(output, 1, output.Length - 1) : null;

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    /// <summary>The live keys: a few slots, each retired for a fresh key after a bounded number of operations.</summary>
    private sealed class KeySpace(int slots, int opsPerKey)
    {
        private readonly string[] names = Enumerable.Range(0, slots).Select(i => Name(i, 0)).ToArray();
        private readonly int[] generations = new int[slots];
        private readonly int[] operations = new int[slots];
        private readonly string?[] lastSeen = new string?[slots];

        public (string Key, string? Last) Take(Random random)
        {
            lock (names)
            {
                var slot = random.Next(names.Length);
                if (++operations[slot] > opsPerKey)
                {
                    names[slot] = Name(slot, ++generations[slot]);
                    operations[slot] = 1;
                    lastSeen[slot] = null;
                }

                return (names[slot], lastSeen[slot]);
            }
        }

        public void Observe(string key, string? value)
        {
            lock (names)
            {
                var slot = Array.IndexOf(names, key);
                if (slot >= 0)
                {
                    lastSeen[slot] = value;
                }
            }
        }

        private static string Name(int slot, int generation) => string.Create(CultureInfo.InvariantCulture, $"r{slot}g{generation}");
    }
}
