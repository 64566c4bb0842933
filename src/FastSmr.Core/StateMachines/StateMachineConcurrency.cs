namespace FastSmr.Core.StateMachines;

/// <summary>Which state machine calls a state machine allows to overlap.</summary>
[Flags]
public enum StateMachineConcurrency
{
    /// <summary>No call overlaps any other (the default).</summary>
    None = 0,

    /// <summary>
    /// Queries may run concurrently with each other (never with Apply or snapshots). Reserved: the current engine accepts
    /// the flag but still runs every call one at a time, which this contract allows.
    /// </summary>
    ConcurrentQueries = 1,
}
