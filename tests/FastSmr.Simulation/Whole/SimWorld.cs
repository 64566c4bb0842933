namespace FastSmr.Simulation;

/// <summary>
/// One thread, one seeded timeline: events at simulated microseconds (deliveries, timers, faults, client steps) and the
/// tasks that processes queued on their <see cref="SimScheduler"/>s, run to quiescence between events in the order they
/// were queued. Nothing in it reads the real clock or uses the thread pool, so a seed replays exactly.
/// </summary>
public sealed class SimWorld
{
    private readonly PriorityQueue<SimEvent, (long At, long Sequence)> events = new();
    private readonly Queue<(SimScheduler Scheduler, Task Task)> ready = new();
    private long sequence;
    private int thread = Environment.CurrentManagedThreadId;
    private string? escaped;

    /// <summary>Creates a world whose random choices come from <paramref name="random"/>.</summary>
    public SimWorld(SimRandom random) => Random = random ?? throw new ArgumentNullException(nameof(random));

    /// <summary>Now, in simulated microseconds since the start.</summary>
    public long NowUs { get; private set; }

    /// <summary>The seeded source of every choice.</summary>
    public SimRandom Random { get; }

    /// <summary>Events and tasks run so far.</summary>
    public long Steps { get; private set; }

    /// <summary>A running hash of what ran and when: equal across processes and machines for one seed.</summary>
    public ulong TraceHash { get; private set; } = 14695981039346656037UL;

    /// <summary>Where each event's description goes when tracing (null: not traced).</summary>
    public TextWriter? Trace { get; init; }

    /// <summary>Runs <paramref name="action"/> at <paramref name="atUs"/> if <paramref name="owner"/> (when given) is still alive then.</summary>
    public void At(long atUs, SimProcess? owner, string what, Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        events.Enqueue(new SimEvent(owner, what, action), (Math.Max(atUs, NowUs), sequence++));
    }

    /// <summary>Runs <paramref name="action"/> after <paramref name="delayUs"/>.</summary>
    public void After(long delayUs, SimProcess? owner, string what, Action action) => At(NowUs + delayUs, owner, what, action);

    /// <summary>Mixes <paramref name="value"/> into the trace hash (and prints <paramref name="what"/> when tracing).</summary>
    public void Note(string what, long value = 0)
    {
        var hash = TraceHash;
        foreach (var c in what)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }

        TraceHash = (hash ^ (ulong)value ^ (ulong)NowUs) * 1099511628211UL;
        Trace?.WriteLine($"{NowUs,12} {what} {value}");
    }

    internal void Ready(SimScheduler scheduler, Task task)
    {
        if (Environment.CurrentManagedThreadId != thread)
        {
            // A continuation completed on another thread (the thread pool): the run is no longer deterministic.
            escaped ??= "a task of " + scheduler.Owner + " was queued from another thread";
            return;
        }

        ready.Enqueue((scheduler, task));
    }

    /// <summary>
    /// Runs events up to <paramref name="untilUs"/> (and the tasks they make ready), stopping early when
    /// <paramref name="stop"/> says so after a step; returns false if it stopped early.
    /// </summary>
    public bool RunUntil(long untilUs, Func<bool>? stop = null)
    {
        // Awaits inside the simulation capture the current scheduler, and a synchronization context first: the caller's
        // (a test framework's) would take continuations off this thread.
        var context = SynchronizationContext.Current;
        SynchronizationContext.SetSynchronizationContext(null);
        try
        {
            return RunEvents(untilUs, stop);
        }
        finally
        {
            SynchronizationContext.SetSynchronizationContext(context);
        }
    }

    private bool RunEvents(long untilUs, Func<bool>? stop)
    {
        thread = Environment.CurrentManagedThreadId;
        while (true)
        {
            RunReady();
            if (escaped is not null)
            {
                throw new InvalidOperationException("the simulation left its thread: " + escaped);
            }

            if (stop?.Invoke() == true)
            {
                return false;
            }

            if (!events.TryPeek(out _, out var key) || key.At > untilUs)
            {
                NowUs = Math.Max(NowUs, untilUs);
                return true;
            }

            var next = events.Dequeue();
            NowUs = key.At;
            if (next.Owner is { Alive: false })
            {
                continue;
            }

            Steps++;
            Note(next.What);
            next.Run();
        }
    }

    private void RunReady()
    {
        while (ready.TryDequeue(out var item))
        {
            if (!item.Scheduler.Owner.Alive)
            {
                continue; // the process crashed: what it had queued never runs
            }

            Steps++;
            item.Scheduler.Execute(item.Task);
        }
    }

    private sealed record SimEvent(SimProcess? Owner, string What, Action Run);
}

/// <summary>One incarnation of a simulated process: when it crashes, its events, timers and queued tasks never run.</summary>
public sealed class SimProcess(string name)
{
    /// <summary>For traces.</summary>
    public string Name { get; } = name;

    /// <summary>False from the crash on.</summary>
    public bool Alive { get; private set; } = true;

    /// <summary>The crash: nothing of this incarnation runs any more.</summary>
    public void Kill() => Alive = false;

    /// <inheritdoc />
    public override string ToString() => Name;
}

/// <summary>
/// A process's task scheduler: queued tasks run on the world's thread in the order they were queued, never inline and
/// never on the thread pool.
/// </summary>
public sealed class SimScheduler(SimWorld world, SimProcess owner) : TaskScheduler
{
    /// <summary>The process whose tasks these are.</summary>
    public SimProcess Owner { get; } = owner;

    /// <summary>Starts <paramref name="work"/> as a task of this process.</summary>
    public Task Run(Func<Task> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this).Unwrap();

    /// <summary>Starts <paramref name="work"/> as a task of this process.</summary>
    public Task<T> Run<T>(Func<Task<T>> work) =>
        Task.Factory.StartNew(work, CancellationToken.None, TaskCreationOptions.DenyChildAttach, this).Unwrap();

    /// <inheritdoc />
    protected override void QueueTask(Task task)
    {
        if (Owner.Alive)
        {
            world.Ready(this, task);
        }
    }

    /// <inheritdoc />
    protected override bool TryExecuteTaskInline(Task task, bool taskWasPreviouslyQueued) => false;

    /// <inheritdoc />
    protected override IEnumerable<Task>? GetScheduledTasks() => null;

    internal void Execute(Task task) => TryExecuteTask(task);
}
