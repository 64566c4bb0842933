using System.Buffers;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using FastSmr.Core.Batching;
using FastSmr.Core.Protocol;
using FastSmr.Security;

namespace FastSmr.Client;

/// <summary>
/// A FastSmr client: finds the leader, pipelines many requests over one connection, enforces deadlines, and retries
/// automatically only what is safe to retry.
/// </summary>
/// <remarks>
/// Retry rule: a request is retried (at the leader, within its deadline) only after an outcome that guarantees it was
/// not appended — <see cref="SubmitStatus.NotLeader"/>, <see cref="SubmitStatus.Busy"/>, <see cref="SubmitStatus.Unavailable"/>,
/// a refused connection, or a connection lost before the request was written — or when the command is marked idempotent.
/// Anything else that leaves the outcome open (no answer before the deadline, a connection lost after sending, a server
/// answering <see cref="SubmitStatus.Unknown"/>) comes back as <see cref="SubmitStatus.Unknown"/>: never a silent double apply.
/// Thread-safe: any number of callers may use one client concurrently.
/// </remarks>
public sealed class FastSmrClient : IAsyncDisposable
{
    private static readonly SpanAction<
        byte,
        (ReadOnlyMemory<byte> Command, CommandOptions Options, ulong ClientId, ulong Sequence)
    > WriteRecord = static (span, s) =>
    {
        BatchFormat.WriteRecordHeader(span, s.Command.Length, s.Options, s.ClientId, s.Sequence);
        s.Command.Span.CopyTo(span[BatchFormat.RecordHeaderSize..]);
    };

    private static readonly SpanAction<byte, ReadOnlyMemory<byte>> WriteBytes = static (span, bytes) => bytes.Span.CopyTo(span);

    private readonly FastSmrClientOptions options;
    private readonly ulong clientId; // as written into records: with TLS, the certificate's client number in the upper half
    private readonly SemaphoreSlim inFlight;
    private readonly SemaphoreSlim connectLock = new(1, 1);
    private ClientConnection? connection;
    private string? leaderHint;
    private int nextEndPoint;
    private long sequence;
    private int disposed;

    /// <summary>Creates a client; it connects on first use.</summary>
    public FastSmrClient(FastSmrClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.EndPoints.Count == 0)
        {
            throw new ArgumentException("at least one endpoint is required", nameof(options));
        }

        foreach (var endPoint in options.EndPoints)
        {
            _ = Core.EndPointParser.Parse(endPoint);
        }

        if (options.Tls is null == !options.Insecure)
        {
            throw new ArgumentException(
                options.Tls is null
                    ? "Tls: a client certificate is required (TlsCredentials.Load), or set Insecure for a plaintext cluster"
                    : "Insecure: cannot be set together with Tls",
                nameof(options)
            );
        }

        if (options.Tls is { } tls)
        {
            if (tls.Identity.Role != CertificateRole.Client || options.ClientId > uint.MaxValue)
            {
                throw new ArgumentException(
                    "Tls/ClientId: a client certificate and a ClientId below 2^32 are required (got "
                        + tls.Identity
                        + " and "
                        + options.ClientId
                        + ")",
                    nameof(options)
                );
            }

            clientId = ((ulong)tls.Identity.Number << 32) | options.ClientId;
        }
        else
        {
            clientId = options.ClientId;
        }

        this.options = options;
        inFlight = new SemaphoreSlim(options.InFlightMax, options.InFlightMax);
    }

    /// <summary>The endpoint of the replica the client currently talks to (null before the first request).</summary>
    public string? CurrentEndPoint => connection?.EndPoint;

    /// <summary>Submits a command and waits for its outcome.</summary>
    /// <param name="command">The command bytes.</param>
    /// <param name="idempotent">True when applying the command twice has the effect of applying it once; such a command is
    /// also retried after an unknown outcome.</param>
    /// <param name="timeout">The deadline, counted from now (zero means <see cref="FastSmrClientOptions.DefaultTimeout"/>).</param>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    public async ValueTask<ClientResult> SubmitAsync(ReadOnlyMemory<byte> command, bool idempotent = false, TimeSpan timeout = default)
    {
        var flags = idempotent ? CommandOptions.Idempotent : CommandOptions.None;
        var seq = (ulong)Interlocked.Increment(ref sequence);
        var body = new RequestBody<(ReadOnlyMemory<byte>, CommandOptions, ulong, ulong)>(
            FrameType.Submit,
            0,
            BatchFormat.RecordHeaderSize + command.Length,
            WriteRecord,
            (command, flags, clientId, seq)
        );
        return await ExecuteAsync(body, retryUnknown: idempotent, timeout).ConfigureAwait(false);
    }

    /// <summary>Runs a read-only query.</summary>
    /// <param name="query">The query bytes.</param>
    /// <param name="consistency">Linearizable (leader, read barrier) or local (any replica, may be stale).</param>
    /// <param name="timeout">The deadline, counted from now.</param>
    public async ValueTask<ClientResult> ReadAsync(
        ReadOnlyMemory<byte> query,
        ReadConsistency consistency = ReadConsistency.Linearizable,
        TimeSpan timeout = default
    ) =>
        // A read changes nothing, so it is always safe to retry.
        await ExecuteAsync(
                new RequestBody<ReadOnlyMemory<byte>>(FrameType.Read, (byte)consistency, query.Length, WriteBytes, query),
                retryUnknown: true,
                timeout
            )
            .ConfigureAwait(false);

    /// <summary>Asks one replica for its status frame (over TLS with <paramref name="tls"/>, in plaintext without).</summary>
    public static async Task<StatusReport> GetStatusAsync(string endPoint, ulong clusterId, TimeSpan timeout, TlsCredentials? tls)
    {
        using var cts = new CancellationTokenSource(timeout);
        var connection = await ClientConnection
            .ConnectAsync(endPoint, TlsCredentials.ResolveClusterId(clusterId, tls), 1 << 16, TimeProvider.System, tls, cts.Token)
            .ConfigureAwait(false);
        await using (connection.ConfigureAwait(false))
        {
            var request = connection.Send(FrameType.Status, 0, 0, 0, WriteBytes, ReadOnlyMemory<byte>.Empty);
            var reply = await request.Reply.Task.WaitAsync(cts.Token).ConfigureAwait(false);
            if (reply.Status == SubmitStatus.Busy)
            {
                throw new ProtocolException("the replica is answering too many status requests right now; ask again later");
            }

            return FrameCodec.ReadStatus(reply.Body);
        }
    }

    /// <inheritdoc />
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0)
        {
            return;
        }

        var current = Interlocked.Exchange(ref connection, null);
        if (current is not null)
        {
            await current.DisposeAsync().ConfigureAwait(false);
        }

        inFlight.Dispose();
        connectLock.Dispose();
    }

    /// <summary>
    /// Sends the request, to the leader as far as the client knows, and again after every answer that says it was not
    /// appended (or, when <paramref name="retryUnknown"/>, after any answer that is not final), until the budget is spent.
    /// </summary>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<ClientResult> ExecuteAsync<TState>(RequestBody<TState> body, bool retryUnknown, TimeSpan timeout)
    {
        ObjectDisposedException.ThrowIf(disposed != 0, this);
        var budget = timeout <= TimeSpan.Zero ? options.DefaultTimeout : timeout;
        var started = options.Time.GetTimestamp();
        if (!await inFlight.WaitAsync(budget).ConfigureAwait(false))
        {
            return new ClientResult(SubmitStatus.Busy, [], 0);
        }

        var retry = new RetryState { LastStatus = SubmitStatus.Unavailable, Backoff = TimeSpan.FromMilliseconds(2) };
        try
        {
            while (true)
            {
                var remaining = budget - options.Time.GetElapsedTime(started);
                if (remaining <= TimeSpan.Zero)
                {
                    return new ClientResult(retry.MayHaveApplied ? SubmitStatus.Unknown : retry.LastStatus, [], retry.Attempts);
                }

                if (await TryGetConnectionAsync(remaining).ConfigureAwait(false) is not { } current)
                {
                    // Nothing was sent: safe to try again (another replica, after a pause).
                    retry.LastStatus = SubmitStatus.Unavailable;
                    retry.Backoff = await PauseAsync(retry.Backoff, remaining).ConfigureAwait(false);
                    continue;
                }

                retry.Attempts++;
                var sentAt = options.Time.GetTimestamp();
                var budgetUs = (uint)Math.Min(remaining.TotalMicroseconds, uint.MaxValue);
                var request = current.Send(body.Type, body.Flags, budgetUs, body.Length, body.Write, body.State);
                AttemptStep step;
                try
                {
                    var reply = await request.Reply.Task.WaitAsync(remaining, options.Time).ConfigureAwait(false);
                    step = OnReply(reply, current, retryUnknown, ref retry);
                }
                catch (TimeoutException)
                {
                    OnTimeout(current, request, sentAt);
                    return new ClientResult(SubmitStatus.Unknown, [], retry.Attempts);
                }
                catch (ConnectionLostException)
                {
                    step = OnConnectionLost(current, request, retryUnknown, ref retry);
                }

                if (step == AttemptStep.Done)
                {
                    return retry.Result;
                }

                if (step == AttemptStep.PauseThenRetry)
                {
                    retry.Backoff = await PauseAsync(retry.Backoff, remaining).ConfigureAwait(false);
                }
            }
        }
        finally
        {
            inFlight.Release();
        }
    }

    /// <summary>A connection to the leader (or the best guess), or null when none could be made in time.</summary>
    private async ValueTask<ClientConnection?> TryGetConnectionAsync(TimeSpan remaining)
    {
        try
        {
            return await GetConnectionAsync(remaining).ConfigureAwait(false);
        }
        catch (Exception e)
            when (e
                    is IOException
                        or System.Net.Sockets.SocketException
                        or OperationCanceledException
                        or ProtocolException
                        or TimeoutException
            )
        {
            return null;
        }
    }

    /// <summary>What a reply means for the request: its final result, or another attempt (after a pause or at once).</summary>
    private AttemptStep OnReply(ClientReply reply, ClientConnection current, bool retryUnknown, ref RetryState retry)
    {
        switch (reply.Status)
        {
            case SubmitStatus.Ok:
                retry.Result = new ClientResult(SubmitStatus.Ok, reply.Body, retry.Attempts);
                return AttemptStep.Done;
            case SubmitStatus.NotLeader:
                retry.LastStatus = SubmitStatus.NotLeader;
                var (_, leaderEndPoint) = FrameCodec.ReadNotLeader(reply.Body);
                leaderHint = leaderEndPoint;
                DropConnection(current);
                return leaderEndPoint is null ? AttemptStep.PauseThenRetry : AttemptStep.Retry;
            case SubmitStatus.Busy:
            case SubmitStatus.Unavailable:
                retry.LastStatus = reply.Status;
                if (reply.Status == SubmitStatus.Unavailable)
                {
                    // The replica knows no leader: ask another one after a pause.
                    DropConnection(current);
                }

                return AttemptStep.PauseThenRetry;
            case SubmitStatus.Unknown when retryUnknown:
                retry.LastStatus = SubmitStatus.Unknown;
                retry.MayHaveApplied = true;
                return AttemptStep.PauseThenRetry;
            default:
                // Final outcomes without output: Rejected, Timeout (dropped before append), Unknown, ProtocolError.
                // After an earlier attempt that may have been applied, a "not appended" answer speaks only for
                // this attempt, so the caller is told Unknown.
                var status = retry.MayHaveApplied && reply.Status.IsNotAppended() ? SubmitStatus.Unknown : reply.Status;
                retry.Result = new ClientResult(status, [], retry.Attempts);
                return AttemptStep.Done;
        }
    }

    /// <summary>The connection died with the request outstanding: retry what was never sent, or what may be retried.</summary>
    private AttemptStep OnConnectionLost(ClientConnection current, OutstandingRequest request, bool retryUnknown, ref RetryState retry)
    {
        DropConnection(current);
        var sent = request.WasSent;
        retry.MayHaveApplied |= sent;
        if (!sent || retryUnknown)
        {
            retry.LastStatus = sent ? SubmitStatus.Unknown : SubmitStatus.Unavailable;
            return AttemptStep.Retry;
        }

        retry.Result = new ClientResult(SubmitStatus.Unknown, [], retry.Attempts);
        return AttemptStep.Done;
    }

    /// <summary>
    /// No answer within the deadline: the request is abandoned, and its replica dropped if it sent nothing at all
    /// meanwhile.
    /// </summary>
    private void OnTimeout(ClientConnection current, OutstandingRequest request, long sentAt)
    {
        current.Abandon(request);

        // A replica that sent nothing at all while this request waited is unresponsive — paused, cut off, or a deposed
        // leader that has not noticed yet — so the next request tries another replica.
        if (!current.HeardFromSince(sentAt))
        {
            DropConnection(current);
        }
    }

    /// <returns>The next, longer back-off (capped at 100 ms).</returns>
    private async ValueTask<TimeSpan> PauseAsync(TimeSpan backoff, TimeSpan remaining)
    {
        var pause = backoff < remaining ? backoff : remaining;
        if (pause > TimeSpan.Zero)
        {
            await Task.Delay(pause, options.Time).ConfigureAwait(false);
        }

        return TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromMilliseconds(100).Ticks));
    }

    private async ValueTask<ClientConnection> GetConnectionAsync(TimeSpan remaining)
    {
        var current = connection;
        if (current is { IsOpen: true })
        {
            return current;
        }

        var limit = remaining < options.ConnectTimeout ? remaining : options.ConnectTimeout;
        if (!await connectLock.WaitAsync(limit).ConfigureAwait(false))
        {
            throw new TimeoutException("timed out waiting to connect");
        }

        try
        {
            current = connection;
            if (current is { IsOpen: true })
            {
                return current;
            }

            var target = leaderHint ?? options.EndPoints[nextEndPoint++ % options.EndPoints.Count];
            leaderHint = null;
            using var cts = new CancellationTokenSource(limit);
            current = await ClientConnection
                .ConnectAsync(
                    target,
                    TlsCredentials.ResolveClusterId(options.ClusterId, options.Tls),
                    options.ReplyBytesMax,
                    options.Time,
                    options.Tls,
                    cts.Token
                )
                .ConfigureAwait(false);
            connection = current;
            return current;
        }
        finally
        {
            connectLock.Release();
        }
    }

    private void DropConnection(ClientConnection current)
    {
        if (Interlocked.CompareExchange(ref connection, null, current) == current)
        {
            _ = CloseWhenDrainedAsync(current, options.DefaultTimeout);
        }
    }

    /// <summary>
    /// Closes a connection the client moved away from once every request on it has its answer: closing it earlier would
    /// turn requests the old replica is about to refuse (not appended) into Unknown outcomes.
    /// </summary>
    private async Task CloseWhenDrainedAsync(ClientConnection old, TimeSpan patience)
    {
        var started = options.Time.GetTimestamp();
        while (old.OutstandingCount > 0 && old.IsOpen && options.Time.GetElapsedTime(started) < patience)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), options.Time).ConfigureAwait(false);
        }

        await old.DisposeAsync().ConfigureAwait(false);
    }

    private enum AttemptStep
    {
        /// <summary>The request has its final result in <see cref="RetryState.Result"/>.</summary>
        Done,

        /// <summary>Try again at once (at another replica, or at the leader just named).</summary>
        Retry,

        /// <summary>Try again after the back-off.</summary>
        PauseThenRetry,
    }

    /// <summary>One request's retry state across its attempts.</summary>
    private struct RetryState
    {
        public int Attempts;
        public SubmitStatus LastStatus;

        /// <summary>Once an attempt may have been appended, the final answer can never again be "not appended".</summary>
        public bool MayHaveApplied;
        public TimeSpan Backoff;
        public ClientResult Result;
    }

    /// <summary>What a request sends: its frame type and flags, and how to write its body of <see cref="Length"/> bytes.</summary>
    private readonly record struct RequestBody<TState>(
        FrameType Type,
        byte Flags,
        int Length,
        SpanAction<byte, TState> Write,
        TState State
    );
}
