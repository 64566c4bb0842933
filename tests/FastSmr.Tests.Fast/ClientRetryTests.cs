using System.Buffers;
using System.Net;
using System.Net.Sockets;
using FastSmr.Client;
using FastSmr.Core.Batching;
using FastSmr.Core.Kv;
using FastSmr.Core.Protocol;

namespace FastSmr.Tests;

/// <summary>
/// The client's retry rule against a scripted server: only "not appended" outcomes (or idempotent commands) are retried;
/// a request whose fate is unknown comes back Unknown and is never sent twice.
/// </summary>
public class ClientRetryTests
{
    /// <summary>A fake replica: answers the handshake, then lets a script decide what to do with each Submit.</summary>
    private sealed class ScriptedServer : IAsyncDisposable
    {
        private readonly TcpListener listener = new(IPAddress.Loopback, 0);
        private readonly Func<int, SubmitStatus?> script;
        private readonly CancellationTokenSource stop = new();
        private readonly Task loop;
        private int submits;

        public ScriptedServer(Func<int, SubmitStatus?> script)
        {
            this.script = script;
            listener.Start();
            loop = Task.Run(AcceptAsync);
        }

        public string EndPoint => "127.0.0.1:" + ((IPEndPoint)listener.LocalEndpoint).Port;

        public int Submits => Volatile.Read(ref submits);

        private async Task AcceptAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                Socket socket;
                try
                {
                    socket = await listener.AcceptSocketAsync(stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }

                _ = Task.Run(() => ServeAsync(socket));
            }
        }

        private async Task ServeAsync(Socket socket)
        {
            using var owned = socket;
            var buffer = new byte[64 * 1024];
            var filled = 0;
            while (true)
            {
                var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
                if (read == 0)
                {
                    return;
                }

                filled += read;
                var sequence = new ReadOnlySequence<byte>(buffer, 0, filled);
                while (FrameCodec.TryReadFrame(ref sequence, 1 << 20, out var header, out _))
                {
                    var writer = new ArrayBufferWriter<byte>();
                    if (header.Type == FrameType.Hello)
                    {
                        var body = new byte[FrameCodec.HelloReplySize];
                        FrameCodec.WriteHelloReply(body, new ReplicaId(1), 1);
                        FrameCodec.WriteFrame(writer, FrameType.HelloReply, 0, SubmitStatus.Ok, header.RequestId, 0, body);
                    }
                    else
                    {
                        var n = Interlocked.Increment(ref submits);
                        var status = script(n);
                        if (status is null)
                        {
                            socket.Shutdown(SocketShutdown.Both);
                            return; // received, never answered: the client cannot know whether it was applied
                        }

                        FrameCodec.WriteFrame(writer, FrameType.SubmitReply, 0, status.Value, header.RequestId, 0, status == SubmitStatus.Ok ? [0] : []);
                    }

                    await socket.SendAsync(writer.WrittenMemory, SocketFlags.None);
                }

                var consumed = (int)(filled - sequence.Length);
                Buffer.BlockCopy(buffer, consumed, buffer, 0, filled - consumed);
                filled -= consumed;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            listener.Stop();
            await loop;
        }
    }

    private static FastSmrClient Client(string endPoint) => new(new FastSmrClientOptions { EndPoints = [endPoint], DefaultTimeout = TimeSpan.FromSeconds(5), Insecure = true });

    [Fact]
    public async Task NonIdempotent_ConnectionLostAfterSend_IsUnknownAndSentOnce()
    {
        await using var server = new ScriptedServer(n => n == 1 ? null : SubmitStatus.Ok);
        await using var client = Client(server.EndPoint);
        var result = await client.SubmitAsync(KvCommand.Increment(Kv.Key("c"), 1));
        Assert.Equal(SubmitStatus.Unknown, result.Status);
        Assert.Equal(1, result.Attempts);
        await Task.Delay(200);
        Assert.Equal(1, server.Submits);
    }

    [Fact]
    public async Task Idempotent_ConnectionLostAfterSend_IsRetried()
    {
        await using var server = new ScriptedServer(n => n == 1 ? null : SubmitStatus.Ok);
        await using var client = Client(server.EndPoint);
        var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("v")), idempotent: true);
        Assert.Equal(SubmitStatus.Ok, result.Status);
        Assert.Equal(2, server.Submits);
    }

    [Fact]
    public async Task Idempotent_MaybeAppliedThenBusyUntilTheDeadline_IsReportedUnknown_NotBusy()
    {
        // The first attempt may have been applied (connection lost after sending); the retries are refused Busy until the
        // deadline. "Busy" would tell the caller nothing was applied, which is not known: the answer must be Unknown.
        await using var server = new ScriptedServer(n => n == 1 ? null : SubmitStatus.Busy);
        await using var client = Client(server.EndPoint);
        var result = await client.SubmitAsync(KvCommand.Put(Kv.Key("k"), Kv.Key("v")), idempotent: true, timeout: TimeSpan.FromMilliseconds(400));
        Assert.Equal(SubmitStatus.Unknown, result.Status);
        Assert.True(server.Submits >= 2);
    }

    [Fact]
    public async Task ServerUnknown_IsNotRetried_ForNonIdempotentCommands()
    {
        await using var server = new ScriptedServer(_ => SubmitStatus.Unknown);
        await using var client = Client(server.EndPoint);
        var result = await client.SubmitAsync(KvCommand.Increment(Kv.Key("c"), 1));
        Assert.Equal(SubmitStatus.Unknown, result.Status);
        Assert.Equal(1, server.Submits);
    }

    [Theory]
    [InlineData(SubmitStatus.Busy)]
    [InlineData(SubmitStatus.NotLeader)]
    public async Task NotAppendedOutcomes_AreRetried_UntilOk(SubmitStatus first)
    {
        await using var server = new ScriptedServer(n => n <= 2 ? first : SubmitStatus.Ok);
        await using var client = Client(server.EndPoint);
        var result = await client.SubmitAsync(KvCommand.Increment(Kv.Key("c"), 1));
        Assert.Equal(SubmitStatus.Ok, result.Status);
        Assert.Equal(3, result.Attempts);
        Assert.Equal(3, server.Submits);
    }

    [Fact]
    public async Task RefusedConnection_IsUnavailableWithinTheDeadline_AndNothingIsSent()
    {
        var port = FastSmr.Testing.Clusters.FreePorts.Next();
        await using var client = new FastSmrClient(new FastSmrClientOptions { EndPoints = ["127.0.0.1:" + port], Insecure = true });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var result = await client.SubmitAsync(KvCommand.Increment(Kv.Key("c"), 1), timeout: TimeSpan.FromMilliseconds(500));
        Assert.Equal(SubmitStatus.Unavailable, result.Status);
        Assert.Equal(0, result.Attempts);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void SubmitRecord_MatchesTheBatchRecordLayout()
    {
        // The client's Submit body is a batch command record: the leader copies it into the batch as is.
        var record = new byte[BatchFormat.RecordHeaderSize + 3];
        BatchFormat.WriteRecordHeader(record, 3, CommandOptions.Idempotent, 5, 6);
        Assert.True(BatchFormat.TryReadRecord(record, out var parsed, out var consumed, out _));
        Assert.Equal(record.Length, consumed);
        Assert.Equal(CommandOptions.Idempotent, parsed.Flags);
    }
}
