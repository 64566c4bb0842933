namespace FastSmr.Tests;

/// <summary>The repository these tests were built from, for tests that read its files.</summary>
internal static class Repository
{
    /// <summary>The directory holding FastSmr.sln, found above the test's output directory.</summary>
    public static string Root { get; } = Find();

    private static string Find()
    {
        var directory = new DirectoryInfo(AppContext.BaseDirectory);
        while (directory is not null && !File.Exists(Path.Combine(directory.FullName, "FastSmr.sln")))
        {
            directory = directory.Parent;
        }

        return directory?.FullName ?? throw new InvalidOperationException("FastSmr.sln not found above " + AppContext.BaseDirectory);
    }
}
