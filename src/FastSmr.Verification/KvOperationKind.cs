namespace FastSmr.Verification;

/// <summary>The key-value operations the model knows.</summary>
public enum KvOperationKind
{
    /// <summary>Sets the key to <see cref="KvOperation.Value"/>.</summary>
    Put,

    /// <summary>Reads the key; the output is the value, or null when absent.</summary>
    Get,

    /// <summary>Removes the key; the output says whether it existed.</summary>
    Delete,

    /// <summary>
    /// Sets the key to <see cref="KvOperation.Value"/> if it holds <see cref="KvOperation.Expected"/> (null: absent);
    /// the output says whether it did.
    /// </summary>
    CompareAndSet,

    /// <summary>
    /// Adds <see cref="KvOperation.Delta"/> to the key's integer value (absent counts as 0); the output is the new
    /// value.
    /// </summary>
    Increment,
}
