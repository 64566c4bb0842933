using FastSmr.Engine;
using FastSmr.Server;

namespace FastSmr.Testing;

/// <summary>The lower-case names that command lines, reports and JSON use for the enums the harness is typed with.</summary>
public static class Names
{
    /// <summary>"dotnext" or "native".</summary>
    public static string Of(BackendKind backend) => backend == BackendKind.Native ? "native" : "dotnext";

    /// <summary>"durable" or "memory".</summary>
    public static string Of(DurabilityMode durability) => durability == DurabilityMode.Memory ? "memory" : "durable";
}
