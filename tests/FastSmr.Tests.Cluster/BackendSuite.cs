using FastSmr.Server;
using Xunit.Abstractions;

namespace FastSmr.Tests;

/// <summary>
/// The suite every replication back-end must pass, in the way dotNext's transport tests run one suite per transport:
/// each test is written once against <see cref="Backend"/>, and a sealed subclass per back-end runs all of them. Its parts:
/// in-process clusters (<c>BackendSuite.InProcess.cs</c>), peer routes through proxies (<c>.PeerRoutes.cs</c>), replica
/// processes killed and restarted (<c>.Processes.cs</c>) and bounded chaos runs (<c>.Chaos.cs</c>). A new back-end gets
/// a subclass here and passes everything before it can be chosen.
/// </summary>
public abstract partial class BackendSuite
{
    private readonly ITestOutputHelper output;

    /// <summary>Creates the suite for one back-end.</summary>
    protected BackendSuite(ITestOutputHelper output) => this.output = output;

    /// <summary>The back-end under test.</summary>
    protected abstract BackendKind Backend { get; }
}

/// <summary>The suite on the DotNext back-end.</summary>
[Collection(ClusterCollection.Name)]
public sealed class DotNextBackendSuite(ITestOutputHelper output) : BackendSuite(output)
{
    /// <inheritdoc/>
    protected override BackendKind Backend => BackendKind.DotNext;
}

/// <summary>The suite on the native back-end.</summary>
[Collection(ClusterCollection.Name)]
public sealed class NativeBackendSuite(ITestOutputHelper output) : BackendSuite(output)
{
    /// <inheritdoc/>
    protected override BackendKind Backend => BackendKind.Native;
}
