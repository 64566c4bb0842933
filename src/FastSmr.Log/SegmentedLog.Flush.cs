using System.Globalization;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace FastSmr.Log;

// The write path to the kernel and to the disk: the write buffer, pwrite, fdatasync shared by concurrent flushes (group
// commit) and the flusher thread. A failed sync is fatal.
public sealed unsafe partial class SegmentedLog
{
    /// <summary>Makes every record appended so far durable.</summary>
    public void Flush() => Flush(new LogIndex(long.MaxValue));

    /// <summary>
    /// Makes records up to <paramref name="upToIndex"/> durable (all appended ones, if beyond the end). Callers that
    /// arrive while a sync runs wait for it and then share the next one.
    /// </summary>
    public void Flush(LogIndex upToIndex)
    {
        var upTo = upToIndex.Value;
        if (Volatile.Read(ref durableIndex) >= upTo)
        {
            return;
        }

        lock (syncGate)
        {
            Segment tail;
            long target;
            lock (state)
            {
                ThrowIfUnwritable();
                if (durableIndex >= Math.Min(upTo, lastIndex))
                {
                    return;
                }

                WritePending();
                target = lastIndex;
                tail = segments[^1];
                tail.TryAcquire();
            }

            try
            {
                if (!options.SkipSyncForTesting)
                {
                    Sync(tail, dataOnly: true);
                }
            }
            finally
            {
                tail.Release();
            }

            lock (state)
            {
                if (target > durableIndex)
                {
                    Volatile.Write(ref durableIndex, target);
                }
            }
        }
    }

    /// <summary>
    /// Completes when records up to <paramref name="upToIndex"/> are durable. Requests arriving while a sync runs are
    /// coalesced into the next single sync (group commit); completes synchronously when already durable.
    /// </summary>
    public ValueTask FlushAsync(LogIndex upToIndex, CancellationToken cancellationToken = default)
    {
        var upTo = upToIndex.Value;
        if (Volatile.Read(ref durableIndex) >= upTo)
        {
            return ValueTask.CompletedTask;
        }

        Task task;
        lock (state)
        {
            ThrowIfUnwritable();
            if (durableIndex >= Math.Min(upTo, lastIndex))
            {
                return ValueTask.CompletedTask;
            }

            nextFlush ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            task = nextFlush.Task;
            if (!flusherRunning)
            {
                flusherRunning = true;
                ThreadPool.UnsafeQueueUserWorkItem(static log => log.RunFlusher(), this, preferLocal: false);
            }
        }

        return new ValueTask(cancellationToken.CanBeCanceled ? task.WaitAsync(cancellationToken) : task);
    }

    private void WritePending()
    {
        if (pending == 0)
        {
            return;
        }

        var tail = segments[^1];
        try
        {
            RandomAccess.Write(tail.File, new ReadOnlySpan<byte>(buffer, pending), pendingOffset);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail("write to " + tail.Name + " failed: " + e.Message);
        }

        options.IoObserver?.Written(tail.Path, pendingOffset, pending);
        pendingOffset += pending;
        pending = 0;
    }

    private void WriteLarge(Segment tail, long offset, long term, long index, LogRecordType type, ReadOnlySpan<byte> payload, int size)
    {
        WritePending();
        Span<byte> header = stackalloc byte[LogRecord.HeaderSize];
        LogRecord.WriteHeader(header, term, index, type, payload, durableIndex);
        Span<byte> padding = stackalloc byte[LogRecord.Alignment];
        padding.Clear();
        try
        {
            RandomAccess.Write(tail.File, header, offset);
            RandomAccess.Write(tail.File, payload, offset + LogRecord.HeaderSize);
            RandomAccess.Write(
                tail.File,
                padding[..(size - LogRecord.HeaderSize - payload.Length)],
                offset + LogRecord.HeaderSize + payload.Length
            );
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Fail("write to " + tail.Name + " failed: " + e.Message);
        }

        options.IoObserver?.Written(tail.Path, offset, size);
        pendingOffset = offset + size;
    }

    private void Sync(Segment segment, bool dataOnly)
    {
        if (options.IoObserver?.AllowSync(segment.Path) == false)
        {
            throw Fail((dataOnly ? "fdatasync" : "fsync") + " of " + segment.Name + " failed: injected by a test");
        }

        if (!(dataOnly ? Syscalls.Fdatasync(segment.File) : Syscalls.Fsync(segment.File)))
        {
            throw Fail((dataOnly ? "fdatasync" : "fsync") + " of " + segment.Name + " failed: errno " + Syscalls.LastError);
        }

        options.IoObserver?.Synced(segment.Path);
    }

    private void RunFlusher()
    {
        while (true)
        {
            TaskCompletionSource? batch;
            lock (state)
            {
                batch = nextFlush;
                nextFlush = null;
                if (batch is null)
                {
                    flusherRunning = false;
                    return;
                }
            }

            try
            {
                Flush();
                batch.SetResult();
            }
            catch (Exception e)
            {
                // Whatever went wrong, the waiters hear it and the flusher stays alive for the next batch.
                batch.SetException(e);
            }
        }
    }
}
