namespace FastSmr.Log;

/// <summary>How a <see cref="SegmentedLog"/> lays out and writes its files.</summary>
public sealed record LogOptions
{
    /// <summary>Smallest segment accepted (tests use small segments to exercise roll-over).</summary>
    public const long MinSegmentSize = 4096;

    /// <summary>Largest segment accepted (offsets are 32-bit and a read is one span over the mapping).</summary>
    public const long MaxSegmentSize = 1L << 30;

    /// <summary>Bytes per segment file, preallocated when the segment is created; a multiple of 4 KiB. Default 64 MiB.</summary>
    public long SegmentSize { get; init; } = 64L << 20;

    /// <summary>
    /// Bytes of appended records collected in memory before one <c>pwrite</c> hands them to the kernel (a flush or a
    /// read of them writes them earlier). Default 1 MiB.
    /// </summary>
    public int WriteBufferSize { get; init; } = 1 << 20;

    /// <summary>Written into every segment header; a segment of another cluster is refused on open.</summary>
    public ulong ClusterId { get; init; }

    /// <summary>Written into every segment header; a segment of another node is refused on open.</summary>
    public ReplicaId NodeId { get; init; }

    /// <summary>
    /// Test-only: <see cref="SegmentedLog.Flush(LogIndex)"/> skips its fdatasync and still reports durability. Exists so
    /// the power-loss test can prove
    /// that it catches a log which does not sync; never set outside tests.
    /// </summary>
    internal bool SkipSyncForTesting { get; init; }

    /// <summary>Test-only: told about every write and sync, so a test can model what a power loss would keep.</summary>
    internal ILogIoObserver? IoObserver { get; init; }

    internal void Validate()
    {
        if (SegmentSize < MinSegmentSize || SegmentSize > MaxSegmentSize || SegmentSize % 4096 != 0)
        {
            throw new ArgumentOutOfRangeException(
                nameof(SegmentSize),
                SegmentSize,
                "segment size must be a multiple of 4 KiB between 4 KiB and 1 GiB"
            );
        }

        if (WriteBufferSize < 4096)
        {
            throw new ArgumentOutOfRangeException(nameof(WriteBufferSize), WriteBufferSize, "write buffer must be at least 4 KiB");
        }
    }
}

/// <summary>Test-only hook: every byte range the log changes in a file, and every sync of a file.</summary>
internal interface ILogIoObserver
{
    /// <summary>Bytes [offset, offset+length) of <paramref name="path"/> changed in the page cache (written or punched).</summary>
    void Written(string path, long offset, long length);

    /// <summary>Everything written to <paramref name="path"/> so far is durable.</summary>
    void Synced(string path);

    /// <summary>Called before each sync of a segment; returning false makes that sync fail as if the disk reported EIO.</summary>
    bool AllowSync(string path) => true;
}
