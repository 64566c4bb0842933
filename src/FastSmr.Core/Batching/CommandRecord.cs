namespace FastSmr.Core.Batching;

/// <summary>One command record parsed in place from a batch or a Submit frame.</summary>
public readonly ref struct CommandRecord
{
    /// <summary>Creates a record view.</summary>
    public CommandRecord(CommandOptions flags, ulong clientId, ulong sequence, ReadOnlySpan<byte> command)
    {
        Flags = flags;
        ClientId = clientId;
        Sequence = sequence;
        Command = command;
    }

    /// <summary>The command's flags.</summary>
    public CommandOptions Flags { get; }

    /// <summary>The client session id (0 for none).</summary>
    public ulong ClientId { get; }

    /// <summary>The client's sequence number (0 for none).</summary>
    public ulong Sequence { get; }

    /// <summary>The command bytes.</summary>
    public ReadOnlySpan<byte> Command { get; }
}
