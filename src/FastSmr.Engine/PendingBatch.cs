using FastSmr.Core;

namespace FastSmr.Engine;

/// <summary>A proposed batch whose commands wait for the committed entry carrying the same term and batch id.</summary>
/// <remarks>Concurrency profile: mutated only under the engine's pending-table lock.</remarks>
internal sealed class PendingBatch
{
    public PendingBatch(int capacity) => Commands = new List<PendingCommand>(capacity);

    public ulong BatchId { get; set; }

    public Term Term { get; set; }

    /// <summary>The entry's index once the back-end reported it (0 until then).</summary>
    public LogIndex Index { get; set; }

    public List<PendingCommand> Commands { get; }

    public bool AllCompleted
    {
        get
        {
            foreach (var command in Commands)
            {
                if (!command.IsCompleted)
                {
                    return false;
                }
            }

            return true;
        }
    }

    public void Reset()
    {
        BatchId = 0;
        Term = default;
        Index = default;
        Commands.Clear();
    }
}
