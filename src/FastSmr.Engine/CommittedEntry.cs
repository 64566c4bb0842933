using FastSmr.Core;

namespace FastSmr.Engine;

/// <summary>A committed log entry as a back-end reports it.</summary>
/// <param name="Index">Its index.</param>
/// <param name="Term">The term it was appended in (the proposing leader's term).</param>
/// <param name="Bytes">The entry exactly as proposed; valid only during the apply call. Empty for a back-end's own no-op entries.</param>
public readonly record struct CommittedEntry(LogIndex Index, Term Term, ReadOnlyMemory<byte> Bytes);
