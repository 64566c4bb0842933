using FastSmr.Core;

namespace FastSmr.Engine;

/// <summary>What became of a proposal.</summary>
/// <param name="Outcome">Committed, not appended, or unknown.</param>
/// <param name="Term">The term the entry was appended in (valid when appended).</param>
/// <param name="Index">The entry's index, when the back-end knows it (0 otherwise).</param>
public readonly record struct ProposeResult(ProposeOutcome Outcome, Term Term, LogIndex Index);
