using System.Buffers;
using System.Globalization;
using System.Text;
using FastSmr.Core;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Verification;
using OperationStatus = FastSmr.Verification.OperationStatus;

namespace FastSmr.Simulation;

/// <summary>
/// A simulated client: one operation at a time on a few keys (put, linearizable get, compare-and-set), sent as the
/// client protocol's frames (<see cref="FrameCodec"/>, <see cref="BatchFormat"/> records) over a seeded delay to a
/// replica, which decodes them and calls its engine as the server's client session does. It follows NotLeader hints
/// and retries what was certainly not appended until the operation's deadline; a write whose outcome it cannot know is
/// recorded Unknown. Every operation goes into the history the linearizability checker reads.
/// </summary>
public sealed class SimClient
{
    private const int BodyLengthMax = 1 << 20;
    private readonly SimWorld world;
    private readonly IReadOnlyList<SimNode> nodes;
    private readonly SimSystemSettings settings;
    private readonly SimProcess process;
    private readonly SimScheduler scheduler;
    private readonly SimTime time;
    private readonly List<KvOperation> history;
    private readonly string[] keys;
    private int leaderHint;
    private ulong requestId;
    private int written;

    /// <summary>Creates client <paramref name="id"/>, recording into <paramref name="history"/>.</summary>
    public SimClient(SimWorld world, IReadOnlyList<SimNode> nodes, SimSystemSettings settings, int id, List<KvOperation> history)
    {
        this.world = world ?? throw new ArgumentNullException(nameof(world));
        this.nodes = nodes ?? throw new ArgumentNullException(nameof(nodes));
        this.settings = settings ?? throw new ArgumentNullException(nameof(settings));
        this.history = history ?? throw new ArgumentNullException(nameof(history));
        Id = id;
        process = new SimProcess("c" + id);
        scheduler = new SimScheduler(world, process);
        time = new SimTime(new SimClock(world, 0, 1.0), process);
        keys = Enumerable.Range(0, settings.Keys).Select(k => "k" + k.ToString(CultureInfo.InvariantCulture)).ToArray();
        leaderHint = 1 + world.Random.Below(nodes.Count);
    }

    /// <summary>The client's number.</summary>
    public int Id { get; }

    /// <summary>Runs operations until <paramref name="untilUs"/> (world time).</summary>
    public Task RunAsync(long untilUs) => scheduler.Run(() => LoopAsync(untilUs));

    /// <summary>One linearizable read of every key, each retried until it succeeds; false if <paramref name="deadlineUs"/> passes first.</summary>
    public Task<bool> ReadAllAsync(long deadlineUs) => scheduler.Run(() => ReadAllLoopAsync(deadlineUs));

    private async Task<bool> ReadAllLoopAsync(long deadlineUs)
    {
        foreach (var key in keys)
        {
            while ((await ExecuteAsync(new KvOperation { Client = Id, Kind = KvOperationKind.Get, Key = key })).Status != OperationStatus.Ok)
            {
                if (world.NowUs >= deadlineUs)
                {
                    return false;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(20), time);
            }
        }

        return true;
    }

    private async Task LoopAsync(long untilUs)
    {
        while (world.NowUs < untilUs)
        {
            await ExecuteAsync(NextOperation());
            await Task.Delay(TimeSpan.FromMicroseconds(world.Random.Between(0, settings.ThinkUsMax + 1)), time);
        }
    }

    private KvOperation NextOperation()
    {
        var key = keys[world.Random.Below(keys.Length)];
        var value = "c" + Id.ToString(CultureInfo.InvariantCulture) + "-" + (++written).ToString(CultureInfo.InvariantCulture);
        return world.Random.Below(10) switch
        {
            < 4 => new KvOperation { Client = Id, Kind = KvOperationKind.Put, Key = key, Value = value },
            < 8 => new KvOperation { Client = Id, Kind = KvOperationKind.Get, Key = key },
            _ => new KvOperation
            {
                Client = Id,
                Kind = KvOperationKind.CompareAndSet,
                Key = key,
                Expected = world.Random.Chance(0.3) ? null : "c" + (1 + world.Random.Below(settings.Clients)) + "-" + (1 + world.Random.Below(Math.Max(1, written))),
                Value = value,
            },
        };
    }

    private async Task<KvOperation> ExecuteAsync(KvOperation operation)
    {
        var invoke = world.NowUs;
        var deadline = invoke + settings.RequestTimeoutUs;
        var isRead = operation.Kind == KvOperationKind.Get;
        var frame = Encode(operation, out var id);
        KvOperation done;
        while (true)
        {
            var (status, body) = await CallAsync(frame, id, deadline);
            if (status == SubmitStatus.Ok)
            {
                done = operation with
                {
                    Invoke = invoke,
                    Return = world.NowUs,
                    Status = OperationStatus.Ok,
                    OutputValue = isRead && body.Length > 0 && body[0] == (byte)KvResult.Ok ? Encoding.UTF8.GetString(body, 1, body.Length - 1) : null,
                    OutputFlag = body.Length > 0 && body[0] == (byte)KvResult.Ok,
                };
                break;
            }

            if (status == SubmitStatus.NotLeader && body.Length >= 4)
            {
                var hint = (int)FrameCodec.ReadNotLeader(body).LeaderId.Value;
                leaderHint = hint is > 0 && hint <= nodes.Count ? hint : 1 + world.Random.Below(nodes.Count);
            }
            else
            {
                leaderHint = 1 + world.Random.Below(nodes.Count);
            }

            if ((isRead || status.IsNotAppended()) && world.NowUs + 10_000 < deadline)
            {
                await Task.Delay(TimeSpan.FromMicroseconds(world.Random.Between(1_000, 10_000)), time); // certainly not applied: retry
                continue;
            }

            var certain = isRead || status.IsNotAppended();
            done = operation with { Invoke = invoke, Return = world.NowUs, Status = certain ? OperationStatus.Fail : OperationStatus.Unknown };
            break;
        }

        history.Add(done);
        world.Note("client c" + Id + " " + done.Kind + " " + done.Status);
        return done;
    }

    private byte[] Encode(KvOperation operation, out ulong id)
    {
        var key = Encoding.UTF8.GetBytes(operation.Key);
        var command = operation.Kind switch
        {
            KvOperationKind.Get => KvCommand.Get(key),
            KvOperationKind.Put => KvCommand.Put(key, Encoding.UTF8.GetBytes(operation.Value!)),
            _ => KvCommand.CompareAndSet(key, operation.Expected is null ? null : Encoding.UTF8.GetBytes(operation.Expected), Encoding.UTF8.GetBytes(operation.Value!)),
        };
        id = ++requestId;
        var writer = new ArrayBufferWriter<byte>();
        var timeout = (uint)settings.RequestTimeoutUs;
        if (operation.Kind == KvOperationKind.Get)
        {
            FrameCodec.WriteFrame(writer, FrameType.Read, (byte)ReadConsistency.Linearizable, SubmitStatus.Ok, id, timeout, command);
        }
        else
        {
            var record = new byte[BatchFormat.RecordHeaderSize + command.Length];
            BatchFormat.WriteRecordHeader(record, command.Length, CommandOptions.None, (ulong)Id, 0);
            command.CopyTo(record.AsSpan(BatchFormat.RecordHeaderSize));
            FrameCodec.WriteFrame(writer, FrameType.Submit, 0, SubmitStatus.Ok, id, timeout, record);
        }

        return writer.WrittenSpan.ToArray();
    }

    /// <summary>Sends one request frame to the hinted replica; the reply, or Unknown at the deadline (no answer, or down).</summary>
    private async Task<(SubmitStatus Status, byte[] Body)> CallAsync(byte[] frame, ulong id, long deadlineUs)
    {
        var reply = new TaskCompletionSource<(SubmitStatus, byte[])>(TaskCreationOptions.RunContinuationsAsynchronously);
        var node = nodes[leaderHint - 1];
        var network = settings.ClientDelayUs;
        world.After(world.Random.Between(network.Min, network.Max + 1), null, "request c" + Id + "->r" + node.Id, () =>
        {
            if (!node.Up)
            {
                Answer(reply, world.Random.Between(network.Min, network.Max + 1), null); // connection refused
                return;
            }

            var server = node.Process!;
            _ = node.Scheduler!.Run(async () =>
            {
                var answer = await ServeAsync(node.Engine!, frame);
                if (server.Alive)
                {
                    Answer(reply, world.Random.Between(network.Min, network.Max + 1), answer);
                }
            });
        });
        world.At(deadlineUs, process, "deadline c" + Id, () => reply.TrySetResult((SubmitStatus.Unknown, [])));
        var (status, body) = await reply.Task;
        return (status, body);
    }

    private void Answer(TaskCompletionSource<(SubmitStatus, byte[])> reply, long delayUs, byte[]? frame) =>
        world.After(delayUs, process, "reply c" + Id, () =>
        {
            if (frame is null)
            {
                reply.TrySetResult((SubmitStatus.Unavailable, []));
                return;
            }

            var buffer = new ReadOnlySequence<byte>(frame);
            if (!FrameCodec.TryReadFrame(ref buffer, BodyLengthMax, out var header, out var body))
            {
                throw new InvalidOperationException("a reply frame does not read back");
            }

            reply.TrySetResult((header.Status, body.ToArray()));
        });

    /// <summary>What the server's client session does with one request frame: decode, call the engine, encode the reply.</summary>
    private static async Task<byte[]> ServeAsync(ReplicaEngine engine, byte[] frame)
    {
        var buffer = new ReadOnlySequence<byte>(frame);
        if (!FrameCodec.TryReadFrame(ref buffer, BodyLengthMax, out var header, out var body))
        {
            throw new InvalidOperationException("a request frame does not read back");
        }

        var timeout = TimeSpan.FromMicroseconds(header.TimeoutMicros);
        using var result = header.Type == FrameType.Submit
            ? await engine.SubmitRecordAsync(body, timeout)
            : await engine.ReadAsync(body.ToArray(), (ReadConsistency)header.Flags, timeout);
        var writer = new ArrayBufferWriter<byte>();
        var replyType = header.Type == FrameType.Submit ? FrameType.SubmitReply : FrameType.ReadReply;
        if (result.Status == SubmitStatus.NotLeader)
        {
            var notLeader = new byte[FrameCodec.NotLeaderSizeMax];
            var length = FrameCodec.WriteNotLeader(notLeader, result.LeaderId, null);
            FrameCodec.WriteFrame(writer, replyType, 0, result.Status, header.RequestId, 0, notLeader.AsSpan(0, length));
        }
        else
        {
            FrameCodec.WriteFrame(writer, replyType, 0, result.Status, header.RequestId, 0, result.Output.Span);
        }

        return writer.WrittenSpan.ToArray();
    }
}
