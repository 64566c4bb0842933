namespace FastSmr.Tests;

/// <summary>Short spellings of the typed units for test data: <c>T(3)</c>, <c>I(42)</c>, <c>R(1)</c>.</summary>
internal static class Units
{
    public static Term T(long value) => new(value);

    public static Term T(Term value) => value;

    public static LogIndex I(long value) => new(value);

    public static LogIndex I(LogIndex value) => value;

    public static ReplicaId R(uint value) => new(value);

    public static ReplicaId R(int value) => new((uint)value);
}
