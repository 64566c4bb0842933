using System.Collections.Concurrent;

namespace FastSmr.Engine;

/// <summary>A bounded pool of <see cref="PendingCommand"/> objects; beyond its size objects are left to the GC.</summary>
internal sealed class PendingCommandPool
{
    private readonly ConcurrentQueue<PendingCommand> items = new();
    private readonly int retainedMax;
    private int retained;

    public PendingCommandPool(int retainedMax) => this.retainedMax = retainedMax;

    public PendingCommand Rent()
    {
        if (items.TryDequeue(out var item))
        {
            Interlocked.Decrement(ref retained);
            return item;
        }

        return new PendingCommand(this);
    }

    public void Return(PendingCommand item)
    {
        if (Interlocked.Increment(ref retained) <= retainedMax)
        {
            items.Enqueue(item);
        }
        else
        {
            Interlocked.Decrement(ref retained);
        }
    }
}
