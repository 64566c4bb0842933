namespace FastSmr.Core.Kv;

/// <summary>The first byte of every key-value output.</summary>
public enum KvResult : byte
{
    /// <summary>Done; a Get carries the value, an Increment the new value.</summary>
    Ok = 0,

    /// <summary>The key does not exist (Get, Delete).</summary>
    NotFound = 1,

    /// <summary>A compare-and-set found a different value; nothing changed.</summary>
    Mismatch = 2,

    /// <summary>An Increment found a value that is not an 8-byte integer; nothing changed.</summary>
    TypeMismatch = 3,

    /// <summary>The command could not be parsed; nothing changed.</summary>
    Malformed = 4,

    /// <summary>The value is larger than <see cref="KvCommand.ValueSizeMax"/>; nothing changed.</summary>
    TooLarge = 5,

    /// <summary>The store would pass its size limit (<see cref="KvStateMachine.BytesMax"/>); nothing changed.</summary>
    Full = 6,
}
