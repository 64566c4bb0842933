using Microsoft.Extensions.ObjectPool;

namespace FastSmr.Engine;

/// <summary>
/// Creates <see cref="PendingCommand"/>s bound to their pool: a bounded <see cref="DefaultObjectPool{T}"/> (beyond its
/// size returned objects are left to the GC).
/// </summary>
internal sealed class PendingCommandPool : PooledObjectPolicy<PendingCommand>
{
    private readonly ObjectPool<PendingCommand> pool;

    public PendingCommandPool(int retainedMax) => pool = new DefaultObjectPool<PendingCommand>(this, retainedMax);

    public PendingCommand Rent() => pool.Get();

    public void Recycle(PendingCommand item) => pool.Return(item);

    /// <inheritdoc />
    public override PendingCommand Create() => new(this);

    /// <inheritdoc />
    public override bool Return(PendingCommand obj) => true;
}
