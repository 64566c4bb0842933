namespace FastSmr.Log;

/// <summary>Crash-safe file replacement for what lives next to a log (snapshots, markers).</summary>
public static class DurableFile
{
    /// <summary>
    /// Makes <paramref name="temporaryPath"/>'s bytes durable, renames it to <paramref name="path"/> (replacing any
    /// file there) and makes the rename durable: after a crash either the old file or the complete new one is there.
    /// </summary>
    public static void Commit(string temporaryPath, string path)
    {
        using (var file = File.OpenHandle(temporaryPath, FileMode.Open, FileAccess.ReadWrite))
        {
            if (!Syscalls.Fsync(file))
            {
                throw new IOException("fsync of " + temporaryPath + " failed: errno " + Syscalls.LastError);
            }
        }

        File.Move(temporaryPath, path, overwrite: true);
        Syscalls.SyncDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }

    /// <summary>Makes the names in <paramref name="directory"/> (creations, deletions, renames) durable.</summary>
    public static void SyncDirectory(string directory) => Syscalls.SyncDirectory(directory);
}
