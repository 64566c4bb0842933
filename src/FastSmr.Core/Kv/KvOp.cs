namespace FastSmr.Core.Kv;

/// <summary>The operations of the built-in key-value state machine.</summary>
public enum KvOp : byte
{
    /// <summary>Sets a key to a value.</summary>
    Put = 1,

    /// <summary>Reads a key (through the log, or as a query).</summary>
    Get = 2,

    /// <summary>Removes a key.</summary>
    Delete = 3,

    /// <summary>Sets a key to a new value if its current value equals the expected one (or it is absent, when expected absent).</summary>
    CompareAndSet = 4,

    /// <summary>Adds a signed delta to a key holding a 64-bit little-endian integer (an absent key counts as 0).</summary>
    Increment = 5,
}
