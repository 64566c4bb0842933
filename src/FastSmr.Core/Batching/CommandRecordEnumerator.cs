namespace FastSmr.Core.Batching;

/// <summary>Enumerates the command records of a validated batch body without allocating.</summary>
public ref struct CommandRecordEnumerator
{
    private ReadOnlySpan<byte> remaining;
    private CommandRecord current;

    internal CommandRecordEnumerator(ReadOnlySpan<byte> body)
    {
        remaining = body;
        current = default;
    }

    /// <summary>The current record.</summary>
    public readonly CommandRecord Current => current;

    /// <summary>Returns this enumerator (for <c>foreach</c>).</summary>
    public readonly CommandRecordEnumerator GetEnumerator() => this;

    /// <summary>Moves to the next record.</summary>
    /// <exception cref="InvalidDataException">The body is malformed (it was not validated with
    /// <see cref="BatchFormat.TryParse"/>).</exception>
    public bool MoveNext()
    {
        if (remaining.IsEmpty)
        {
            return false;
        }

        if (!BatchFormat.TryReadRecord(remaining, out current, out var consumed, out var error))
        {
            throw new InvalidDataException(error);
        }

        remaining = remaining[consumed..];
        return true;
    }
}
