using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

/// <summary>The libc calls the log needs that .NET does not expose: fdatasync, fsync of a directory, hole punching, mmap.</summary>
internal static unsafe partial class Syscalls
{
    private const int FallocKeepSize = 0x01;
    private const int FallocPunchHole = 0x02;
    private const int ProtRead = 0x1;
    private const int MapShared = 0x01;
    private const int ReadOnlyDirectory = 0x10000 | 0x80000; // O_RDONLY | O_DIRECTORY | O_CLOEXEC
    private const int AdviseDontNeed = 4; // POSIX_FADV_DONTNEED

    /// <summary>The errno of the last failed call on this thread, as text.</summary>
    public static string LastError => Marshal.GetLastPInvokeError().ToString(CultureInfo.InvariantCulture);

    /// <summary>fdatasync(2); false (errno in <see cref="LastError"/>) when it failed.</summary>
    public static bool Fdatasync(SafeFileHandle handle)
    {
        using var fd = new Descriptor(handle);
        return FdatasyncNative(fd.Value) == 0;
    }

    /// <summary>fsync(2): data and every piece of metadata (used after hole punching, which changes the extent map).</summary>
    public static bool Fsync(SafeFileHandle handle)
    {
        using var fd = new Descriptor(handle);
        return FsyncNative(fd.Value) == 0;
    }

    /// <summary>Makes the directory entries of <paramref name="directory"/> (created, renamed, deleted names) durable.</summary>
    public static void SyncDirectory(string directory)
    {
        var fd = OpenNative(directory, ReadOnlyDirectory);
        if (fd < 0)
        {
            throw new IOException("cannot open directory " + directory + " to sync it: errno " + LastError);
        }

        try
        {
            if (FsyncNative(fd) != 0)
            {
                throw new IOException("fsync of directory " + directory + " failed: errno " + LastError);
            }
        }
        finally
        {
            _ = CloseNative(fd);
        }
    }

    /// <summary>
    /// Reserves <paramref name="length"/> bytes from offset 0 (fallocate mode 0: extends the size, reads as zeros);
    /// false if unsupported.
    /// </summary>
    public static bool Allocate(SafeFileHandle handle, long length)
    {
        using var fd = new Descriptor(handle);
        return FallocateNative(fd.Value, 0, 0, length) == 0;
    }

    /// <summary>Drops the file's clean cached pages, so the next read comes from the disk (best effort).</summary>
    public static void DropCache(SafeFileHandle handle)
    {
        using var fd = new Descriptor(handle);
        _ = FadviseNative(fd.Value, 0, 0, AdviseDontNeed);
    }

    /// <summary>
    /// Deallocates [offset, offset+length) keeping the file size, so the range reads as zeros; false if the file system
    /// cannot.
    /// </summary>
    public static bool PunchHole(SafeFileHandle handle, long offset, long length)
    {
        using var fd = new Descriptor(handle);
        return FallocateNative(fd.Value, FallocPunchHole | FallocKeepSize, offset, length) == 0;
    }

    /// <summary>Maps the whole file read-only and shared, so writes through the descriptor are visible through the mapping.</summary>
    public static byte* MapReadOnly(SafeFileHandle handle, long length, string name)
    {
        using var fd = new Descriptor(handle);
        var address = MmapNative(null, (nuint)length, ProtRead, MapShared, fd.Value, 0);
        if (address == (void*)-1)
        {
            throw new IOException(
                "mmap of " + name + " (" + length.ToString(CultureInfo.InvariantCulture) + " bytes) failed: errno " + LastError
            );
        }

        return (byte*)address;
    }

    /// <summary>Removes a mapping made by <see cref="MapReadOnly"/>.</summary>
    public static void Unmap(byte* address, long length) => _ = MunmapNative(address, (nuint)length);

    /// <summary>The descriptor of a handle, kept from being closed and reused while a native call uses it.</summary>
    private readonly ref struct Descriptor
    {
        private readonly SafeFileHandle handle;
        private readonly bool added;

        public Descriptor(SafeFileHandle handle)
        {
            this.handle = handle;
            handle.DangerousAddRef(ref added);
            Value = (int)handle.DangerousGetHandle();
        }

        public int Value { get; }

        public void Dispose()
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int OpenNative(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FsyncNative(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int CloseNative(int fd);

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FdatasyncNative(int fd);

    [LibraryImport("libc", EntryPoint = "fallocate", SetLastError = true)]
    private static partial int FallocateNative(int fd, int mode, long offset, long length);

    [LibraryImport("libc", EntryPoint = "posix_fadvise")]
    private static partial int FadviseNative(int fd, long offset, long length, int advice);

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial void* MmapNative(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int MunmapNative(void* address, nuint length);
}
