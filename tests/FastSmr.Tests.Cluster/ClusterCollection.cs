namespace FastSmr.Tests;

/// <summary>Tests that run replicas share this collection so they do not compete for the machine's two cores.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "clusters";
}
