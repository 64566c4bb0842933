using System.Buffers;
using System.Threading.Tasks.Sources;
using FastSmr.Core.Protocol;

namespace FastSmr.Engine;

/// <summary>
/// One submitted command waiting for its outcome: a pooled <see cref="IValueTaskSource{TResult}"/>, so a submit
/// allocates no task in steady state.
/// </summary>
/// <remarks>
/// Concurrency profile: completed at most once (<c>TryComplete</c> is the only writer of the result, guarded by
/// an interlocked flag). Two owners hold a reference — the engine until the command leaves every engine structure,
/// and the awaiter until it has read the result — and the object returns to its pool when both have released it.
/// </remarks>
internal sealed class PendingCommand : IValueTaskSource<SubmitResult>
{
    private readonly PendingCommandPool pool;
    private ManualResetValueTaskSourceCore<SubmitResult> core;
    private byte[] record = [];
    private int completed;
    private int references;

    public PendingCommand(PendingCommandPool pool)
    {
        this.pool = pool;
        // Continuations run on the thread pool, never inline on the apply path.
        core.RunContinuationsAsynchronously = true;
    }

    /// <summary>The command record (record header and command bytes) as the batch will carry it.</summary>
    public ReadOnlySpan<byte> Record => record.AsSpan(0, RecordLength);

    public int RecordLength { get; private set; }

    /// <summary>The deadline as a <see cref="TimeProvider"/> timestamp.</summary>
    public long DeadlineTimestamp { get; private set; }

    public bool IsCompleted => Volatile.Read(ref completed) != 0;

    public short Version => core.Version;

    public void Initialize(int recordLength, long deadlineTimestamp)
    {
        core.Reset();
        completed = 0;
        references = 2;
        DeadlineTimestamp = deadlineTimestamp;
        RecordLength = recordLength;
        if (record.Length < recordLength)
        {
            if (record.Length > 0)
            {
                ArrayPool<byte>.Shared.Return(record);
            }

            record = ArrayPool<byte>.Shared.Rent(recordLength);
        }
    }

    /// <summary>The writable record buffer (valid after <see cref="Initialize"/>).</summary>
    public Span<byte> RecordBuffer => record.AsSpan(0, RecordLength);

    /// <summary>Completes the command once; a later attempt disposes its result and returns false.</summary>
    public bool TryComplete(SubmitResult result)
    {
        if (Interlocked.Exchange(ref completed, 1) != 0)
        {
            result.Dispose();
            return false;
        }

        core.SetResult(result);
        return true;
    }

    public bool TryComplete(SubmitStatus status, ReplicaId leaderId = default) =>
        !IsCompleted && TryComplete(SubmitResult.FromStatus(status, leaderId));

    /// <summary>Drops one owner's reference; the last one returns the object to its pool.</summary>
    public void Release()
    {
        if (Interlocked.Decrement(ref references) == 0)
        {
            if (record.Length > 4 * 1024)
            {
                // Keep pooled objects small (the pool retains thousands): large records go back to the shared pool.
                ArrayPool<byte>.Shared.Return(record);
                record = [];
            }

            pool.Recycle(this);
        }
    }

    public SubmitResult GetResult(short token)
    {
        // Only a successful read releases the awaiter's reference: a stale token or a premature read throws here and
        // must not drop a reference that belongs to a newer use of this pooled object.
        var result = core.GetResult(token);
        Release();
        return result;
    }

    public ValueTaskSourceStatus GetStatus(short token) => core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        core.OnCompleted(continuation, state, token, flags);
}
