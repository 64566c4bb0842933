namespace FastSmr.Core.Batching;

/// <summary>What a log entry carries. Stored as one byte in the batch header.</summary>
public enum EntryType : byte
{
    /// <summary>Client commands, applied to the state machine in order.</summary>
    Commands = 1,

    /// <summary>An entry with no commands (for example the entry a new leader appends in its term).</summary>
    NoOp = 2,

    /// <summary>A membership change (reserved: JOIN / QUIT are ordered in the log like any other entry).</summary>
    Configuration = 3,

    /// <summary>A checkpoint marker (reserved for ordered checkpoints).</summary>
    Checkpoint = 4,
}
