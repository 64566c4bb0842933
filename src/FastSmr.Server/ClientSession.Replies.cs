using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Authentication;
using System.Text;
using System.Threading.Channels;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Engine;
using FastSmr.Security;
using Microsoft.Extensions.Logging;

namespace FastSmr.Server;

// The reply side of a client session: completions queued in request order per connection, the output budget, and the
// writer that drains every ready reply and flushes once.
internal sealed partial class ClientSession
{
    private void Track(FrameType replyType, ulong requestId, ValueTask<SubmitResult> pending)
    {
        if (pending.IsCompletedSuccessfully)
        {
            Reply(replyType, requestId, pending.Result);
            return;
        }

        // A pooled continuation instead of an async method: no Task or state machine is allocated per request.
        PendingReply.Rent().Start(this, replyType, requestId, pending);
    }

    /// <summary>Waits for one request's outcome and queues its reply; pooled, so a request allocates no continuation.</summary>
    private sealed class PendingReply
    {
        private static readonly ConcurrentQueue<PendingReply> Pool = new();
        private static int pooled;
        private readonly Action onCompleted;
        private ClientSession? session;
        private FrameType replyType;
        private ulong requestId;
        private ConfiguredValueTaskAwaitable<SubmitResult>.ConfiguredValueTaskAwaiter awaiter;

        private PendingReply() => onCompleted = OnCompleted;

        public static PendingReply Rent()
        {
            if (Pool.TryDequeue(out var reply))
            {
                Interlocked.Decrement(ref pooled);
                return reply;
            }

            return new PendingReply();
        }

        public void Start(ClientSession owner, FrameType type, ulong id, ValueTask<SubmitResult> pending)
        {
            session = owner;
            replyType = type;
            requestId = id;
            awaiter = pending.ConfigureAwait(false).GetAwaiter();
            awaiter.UnsafeOnCompleted(onCompleted);
        }

        private void OnCompleted()
        {
            var owner = session!;
            var type = replyType;
            var id = requestId;
            SubmitResult result;
            try
            {
                result = awaiter.GetResult();
            }
#pragma warning disable CA1031 // The client must get an answer whatever went wrong inside.
            catch (Exception e)
#pragma warning restore CA1031
            {
                ServerLog.RequestFailed(owner.logger, e);
                result = SubmitResult.FromStatus(SubmitStatus.Unknown);
            }

            session = null;
            awaiter = default;
            if (Interlocked.Increment(ref pooled) <= 4_096)
            {
                Pool.Enqueue(this);
            }
            else
            {
                Interlocked.Decrement(ref pooled);
            }

            owner.Reply(type, id, result);
        }
    }

    /// <summary>Queues a reply to a counted request; its slot is released once the writer has written it.</summary>
    private void Reply(FrameType type, ulong requestId, SubmitResult result) => Enqueue(new ServerReply(type, requestId, result));

    /// <summary>Queues a reply for the writer, counting it against the connection's output budget.</summary>
    private void Enqueue(ServerReply reply)
    {
        var result = reply.Result;
        var unsent = Interlocked.Add(ref unsentBytes, SizeOf(reply));
        if (!replies.Writer.TryWrite(reply))
        {
            result.Dispose(); // connection gone
            return;
        }

        if (unsent > server.Options.ConnectionOutputBytesMax)
        {
            Close(unsent + " bytes of replies unsent, more than ConnectionOutputBytesMax: the client does not read them");
        }
    }

    /// <summary>The most bytes <see cref="Write"/> puts on the wire for <paramref name="reply"/>.</summary>
    private static long SizeOf(in ServerReply reply) =>
        FrameCodec.HeaderSize
        + reply.Type switch
        {
            FrameType.HelloReply => FrameCodec.HelloReplySize,
            FrameType.StatusReply => FrameCodec.StatusReplySize,
            FrameType.Error => 1_024,
            _ => Math.Max(reply.Result.Output.Length, FrameCodec.NotLeaderSizeMax),
        };

    private async Task WriteLoopAsync(CancellationTokenSource session)
    {
        var token = session.Token;
        var reader = replies.Reader;
        try
        {
            while (await reader.WaitToReadAsync(token).ConfigureAwait(false))
            {
                var close = false;
                long written = 0;
                while (reader.TryRead(out var reply))
                {
                    close |= reply.Type == FrameType.Error;
                    written += SizeOf(reply);
                    Write(reply);
                }

                var flush = await output.FlushAsync(token).ConfigureAwait(false);
                Interlocked.Add(ref unsentBytes, -written);
                if (close || flush.IsCompleted)
                {
                    break;
                }
            }
        }
        catch (Exception e)
            when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException)
        { }
        finally
        {
            // Nothing more will be written: stop the reader too (it may be waiting for replies to drain).
            try
            {
                await session.CancelAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException) { }

            // Return the pooled outputs of replies nobody will send.
            while (reader.TryRead(out var dropped))
            {
                dropped.Result.Dispose();
            }
        }
    }

    private void Write(ServerReply reply)
    {
        using var result = reply.Result;
        switch (reply.Type)
        {
            case FrameType.HelloReply:
                Span<byte> hello = stackalloc byte[FrameCodec.HelloReplySize];
                FrameCodec.WriteHelloReply(hello, server.Options.Id, server.Options.ClusterId);
                FrameCodec.WriteFrame(output, FrameType.HelloReply, 0, SubmitStatus.Ok, reply.RequestId, 0, hello);
                return;
            case FrameType.StatusReply when result.Status == SubmitStatus.Busy:
                FrameCodec.WriteFrame(output, FrameType.StatusReply, 0, SubmitStatus.Busy, reply.RequestId, 0, default);
                Interlocked.Decrement(ref inFlight);
                return;
            case FrameType.StatusReply:
                Span<byte> status = stackalloc byte[FrameCodec.StatusReplySize];
                FrameCodec.WriteStatus(
                    status,
                    server.Engine.GetStatus() with
                    {
                        ProcessAllocatedBytes = GC.GetTotalAllocatedBytes(precise: true),
                    }
                );
                FrameCodec.WriteFrame(output, FrameType.StatusReply, 0, SubmitStatus.Ok, reply.RequestId, 0, status);
                Interlocked.Decrement(ref inFlight);
                return;
            case FrameType.Error:
                var text = Encoding.UTF8.GetBytes(reply.Text ?? "protocol error");
                FrameCodec.WriteFrame(
                    output,
                    FrameType.Error,
                    0,
                    SubmitStatus.ProtocolError,
                    reply.RequestId,
                    0,
                    text.AsSpan(0, Math.Min(text.Length, 1024))
                );
                return;
            default:
                if (result.Status == SubmitStatus.NotLeader)
                {
                    Span<byte> notLeader = stackalloc byte[FrameCodec.NotLeaderSizeMax];
                    var length = FrameCodec.WriteNotLeader(notLeader, result.LeaderId, server.ClientEndPointOf(result.LeaderId));
                    FrameCodec.WriteFrame(output, reply.Type, 0, result.Status, reply.RequestId, 0, notLeader[..length]);
                }
                else
                {
                    FrameCodec.WriteFrame(output, reply.Type, 0, result.Status, reply.RequestId, 0, result.Output.Span);
                }

                Interlocked.Decrement(ref inFlight);
                return;
        }
    }
}
