namespace FastSmr.Engine;

/// <summary>
/// The batcher's proposal slots: at most <c>ProposalsInFlightMax</c> rounds in flight. A counter and one waiter signal
/// (only the batcher waits) instead of a <see cref="SemaphoreSlim"/>, whose waits always complete their continuations on
/// the thread pool: under a simulator's scheduler the signal completes inline, so the run stays on its one thread.
/// </summary>
internal sealed class ProposalSlots(int count, bool asynchronousContinuations)
{
    private readonly Lock gate = new();
    private int free = count;
    private TaskCompletionSource? released;

    /// <summary>Takes a slot if one is free.</summary>
    public bool TryTake()
    {
        lock (gate)
        {
            if (free == 0)
            {
                return false;
            }

            free--;
            return true;
        }
    }

    /// <summary>Completes when a slot may be free (take it with <see cref="TryTake"/>; another taker may win).</summary>
    public Task Released()
    {
        lock (gate)
        {
            if (free > 0)
            {
                return Task.CompletedTask;
            }

            released ??= new TaskCompletionSource(
                asynchronousContinuations ? TaskCreationOptions.RunContinuationsAsynchronously : TaskCreationOptions.None
            );
            return released.Task;
        }
    }

    /// <summary>Gives a slot back and wakes the waiter.</summary>
    public void Release()
    {
        TaskCompletionSource? wake;
        lock (gate)
        {
            free++;
            wake = released;
            released = null;
        }

        wake?.TrySetResult();
    }
}
