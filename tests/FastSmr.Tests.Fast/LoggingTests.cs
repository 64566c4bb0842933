using System.Reflection;
using Microsoft.Extensions.Logging;

namespace FastSmr.Tests;

/// <summary>Each assembly logs with event ids from its own range, so an id names one message everywhere.</summary>
public class LoggingTests
{
    [Theory]
    [InlineData(typeof(FastSmr.Engine.ReplicaEngine), 1000, 1099)]
    [InlineData(typeof(FastSmr.Native.NativeBackend), 3000, 3099)]
    [InlineData(typeof(FastSmr.Server.ReplicaServer), 4000, 4099)]
    public void EventIds_AreUnique_AndInTheAssemblysRange(Type anyType, int first, int last)
    {
        var ids = EventIds(anyType.Assembly);
        Assert.NotEmpty(ids);
        Assert.All(ids, id => Assert.InRange(id, first, last));
        Assert.Equal(ids.Count, ids.Distinct().Count());
    }

    [Fact]
    public void NoOtherAssembly_Logs()
    {
        // A new assembly that logs gets its own range above, next to the others.
        foreach (var type in new[] { typeof(FastSmr.DotNext.DotNextBackend), typeof(FastSmr.Log.SegmentedLog), typeof(FastSmr.Raft.RaftNode), typeof(FastSmr.Testing.Names) })
        {
            Assert.Empty(EventIds(type.Assembly));
        }
    }

    private static List<int> EventIds(Assembly assembly) =>
        assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => m.GetCustomAttribute<LoggerMessageAttribute>())
            .Where(a => a is not null)
            .Select(a => a!.EventId)
            .ToList();
}
