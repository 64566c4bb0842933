namespace FastSmr.Core.StateMachines;

/// <summary>Which state machine calls a state machine allows to overlap.</summary>
[Flags]
public enum StateMachineConcurrency
{
    /// <summary>No call overlaps any other (the default).</summary>
    None = 0,

    /// <summary>Queries may run concurrently with each other (never with Apply or snapshots).</summary>
    ConcurrentQueries = 1,
}
