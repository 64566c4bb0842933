namespace FastSmr.Simulation;

/// <summary>
/// A controlled scheduler over real threads (the equivalent of Coyote's, for code with explicit scheduling points):
/// the threads run one at a time, and at every scheduling point the code passes through (<see cref="Point"/>) a seeded
/// choice decides which thread runs next. A seed is one interleaving, replayed exactly; many seeds explore many. Only
/// points outside locks may be used: a thread that blocks while holding the baton stalls the run, which
/// <see cref="Run"/> reports.
/// </summary>
public sealed class ControlledThreads
{
    private readonly SimRandom random;
    private readonly double switchChance;
    private readonly List<Worker> workers = [];
    private readonly Lock gate = new();
    private readonly List<string> trace = [];

    /// <summary>A scheduler whose choices come from <paramref name="seed"/>; at each point it switches with <paramref name="switchChance"/>.</summary>
    public ControlledThreads(ulong seed, double switchChance = 0.5)
    {
        random = new SimRandom(seed);
        this.switchChance = switchChance;
    }

    /// <summary>The interleaving taken: which thread ran from which point.</summary>
    public IReadOnlyList<string> Trace => trace;

    /// <summary>Adds a thread that will run <paramref name="body"/>.</summary>
    public void Add(string name, Action body) => workers.Add(new Worker(name, body ?? throw new ArgumentNullException(nameof(body))));

    /// <summary>
    /// Called by the code under test at a scheduling point: on a controlled thread, the scheduler may let another one run
    /// (this one waits for its turn); elsewhere nothing happens.
    /// </summary>
    public void Point(string where)
    {
        var self = Current;
        if (self is null)
        {
            return;
        }

        Worker next;
        lock (gate)
        {
            var others = workers.Where(w => w != self && !w.Done).ToList();
            next = others.Count > 0 && random.Chance(switchChance) ? others[random.Below(others.Count)] : self;
            trace.Add(self.Name + "@" + where + (next == self ? "" : " -> " + next.Name));
        }

        if (next != self)
        {
            next.Turn.Release();
            self.Turn.Wait();
        }
    }

    /// <summary>Runs every thread to its end under the controlled schedule; false if they did not finish within <paramref name="timeout"/>.</summary>
    public bool Run(TimeSpan timeout)
    {
        var threads = workers.Select(w => new Thread(() => RunWorker(w)) { IsBackground = true, Name = "controlled-" + w.Name }).ToList();
        threads.ForEach(t => t.Start());
        workers[random.Below(workers.Count)].Turn.Release();
        var deadline = DateTime.UtcNow + timeout;
        foreach (var thread in threads)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero || !thread.Join(left))
            {
                return false;
            }
        }

        foreach (var worker in workers)
        {
            if (worker.Failure is { } failure)
            {
                throw new InvalidOperationException("controlled thread " + worker.Name + " failed", failure);
            }
        }

        return true;
    }

    [ThreadStatic]
    private static Worker? current;

    private Worker? Current => current is { } w && workers.Contains(w) ? w : null;

    private void RunWorker(Worker worker)
    {
        current = worker;
        worker.Turn.Wait();
        try
        {
            worker.Body();
        }
#pragma warning disable CA1031 // Reported by Run, with the thread's name.
        catch (Exception e)
#pragma warning restore CA1031
        {
            worker.Failure = e;
        }
        finally
        {
            Worker? next;
            lock (gate)
            {
                worker.Done = true;
                var left = workers.Where(w => !w.Done).ToList();
                next = left.Count == 0 ? null : left[random.Below(left.Count)];
                trace.Add(worker.Name + " done" + (next is null ? "" : " -> " + next.Name));
                }

            next?.Turn.Release();
            current = null;
        }
    }

    private sealed class Worker(string name, Action body)
    {
        public string Name { get; } = name;

        public Action Body { get; } = body;

        public SemaphoreSlim Turn { get; } = new(0, 1);

        public bool Done { get; set; }

        public Exception? Failure { get; set; }
    }
}
