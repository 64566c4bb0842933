using System.Threading.Tasks.Sources;
using FastSmr.Core;
using FastSmr.Engine;

namespace FastSmr.Native;

/// <summary>
/// One proposal on its way through the core: the batch (copied), the term it must be appended in, and
/// the completion the engine awaits. Pooled, so a steady stream of proposals allocates nothing here.
/// </summary>
internal sealed class ProposalWaiter : IValueTaskSource<ProposeResult>
{
    private static readonly Action<object?> Cancelled = static state =>
    {
        var waiter = (ProposalWaiter)state!;
        if (Interlocked.Exchange(ref waiter.completed, 1) == 0)
        {
            // The replication thread may still hold this waiter: it must never be pooled and handed out again.
            waiter.cancelled = true;
            waiter.core.SetResult(new ProposeResult(ProposeOutcome.Unknown, new Term(waiter.Term), new LogIndex(waiter.Index)));
        }
    };

    private readonly Stack<ProposalWaiter> pool;
    private ManualResetValueTaskSourceCore<ProposeResult> core = new() { RunContinuationsAsynchronously = true };
    private CancellationTokenRegistration registration;
    private int completed;
    private bool cancelled;

    public ProposalWaiter(Stack<ProposalWaiter> pool) => this.pool = pool;

    /// <summary>The entry's bytes (the back-end's own copy: the core keeps entries until they are compacted).</summary>
    public byte[] Data { get; private set; } = [];

    public long Term { get; private set; }

    public long Index { get; set; }

    public static ProposalWaiter Rent(Stack<ProposalWaiter> pool, ReadOnlySpan<byte> batch, long term, CancellationToken token)
    {
        ProposalWaiter? waiter;
        lock (pool)
        {
            pool.TryPop(out waiter);
        }

        waiter ??= new ProposalWaiter(pool);
        waiter.Data = batch.ToArray();
        waiter.Term = term;
        waiter.Index = 0;
        waiter.completed = 0;
        waiter.cancelled = false;
        if (token.CanBeCanceled)
        {
            waiter.registration = token.UnsafeRegister(Cancelled, waiter);
        }

        return waiter;
    }

    public ValueTask<ProposeResult> Task => new(this, core.Version);

    /// <summary>Completes the wait once; later calls (and calls after a cancellation) are ignored.</summary>
    public void TryComplete(ProposeOutcome outcome)
    {
        if (Interlocked.Exchange(ref completed, 1) != 0)
        {
            return;
        }

        core.SetResult(new ProposeResult(outcome, new Term(Term), new LogIndex(Index)));
    }

    public ProposeResult GetResult(short token)
    {
        try
        {
            return core.GetResult(token);
        }
        finally
        {
            registration.Dispose();
            registration = default;
            core.Reset();
            Data = [];
            if (!cancelled)
            {
                lock (pool)
                {
                    pool.Push(this);
                }
            }
        }
    }

    public ValueTaskSourceStatus GetStatus(short token) => core.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        core.OnCompleted(continuation, state, token, flags);
}
