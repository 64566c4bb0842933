using FastSmr.Log;
using Xunit.Abstractions;

using static FastSmr.Tests.Units;

namespace FastSmr.Tests;

/// <summary>FastSmr.Log's segmented log: operations against an in-memory model, recovery from torn and corrupt files, readers.</summary>
public sealed class SegmentedLogTests(ITestOutputHelper output) : IDisposable
{
    // Small segments and buffer so a few hundred records roll over, and some records bypass the buffer.
    private static readonly LogOptions Small = new() { SegmentSize = 8192, WriteBufferSize = 4096, ClusterId = 7, NodeId = new ReplicaId(2) };

    private readonly string directory = Directory.CreateTempSubdirectory("fastsmr-log-").FullName;

    [Fact]
    public void AppendFlushRead_AcrossSegments_SurvivesReopen()
    {
        var payloads = new List<byte[]>();
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 300; i++)
            {
                var payload = TestData.Bytes(i, 20 + (i % 90));
                payloads.Add(payload);
                Assert.Equal(i + 1, log.Append(T(1 + (i / 100)), payload).Value);
            }

            log.Flush();
            Assert.Equal(300, log.DurableIndex.Value);
            Assert.True(log.SegmentCount > 3, "300 records of ~100 B must roll over 8 KiB segments, got " + log.SegmentCount);
            AssertRecords(log, payloads, 1);
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        Assert.Equal(300, reopened.LastIndex.Value);
        Assert.Equal(3, reopened.LastTerm.Value);
        Assert.Equal(300, reopened.DurableIndex.Value);
        AssertRecords(reopened, payloads, 1);
        Assert.Equal(2, reopened.TermAt(I(150)).Value);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void RandomOperations_MatchAnInMemoryModel(int seed)
    {
        var rng = new Random(seed);
        var model = new List<(long Term, byte[] Payload)>(); // model[i] is index first + i
        long first = 1, term = 1, durable = 0, commit = 0;
        var log = SegmentedLog.Open(directory, Small);
        try
        {
            for (var step = 0; step < 500; step++)
            {
                var last = first + model.Count - 1;
                var op = rng.Next(100);
                if (op < 50)
                {
                    term += rng.Next(12) == 0 ? 1 : 0;
                    var payload = TestData.Bytes(rng.Next(), rng.Next(10) == 0 ? rng.Next(4000, 7000) : rng.Next(0, 200));
                    Assert.Equal(last + 1, log.Append(T(term), payload).Value);
                    model.Add((term, payload));
                }
                else if (op < 60)
                {
                    log.Flush();
                    durable = last;
                }
                else if (op < 66 && last > Math.Max(commit, first - 1))
                {
                    var from = rng.NextInt64(Math.Max(commit, first - 1) + 1, last + 1);
                    log.TruncateSuffix(I(from));
                    model.RemoveRange((int)(from - first), (int)(last - from + 1));
                    durable = Math.Min(durable, from - 1);
                }
                else if (op < 70 && durable >= first)
                {
                    var upTo = rng.NextInt64(first, durable + 1);
                    log.CompactPrefix(I(upTo));
                    model.RemoveRange(0, (int)(upTo - first + 1));
                    first = upTo + 1;
                }
                else if (op < 74)
                {
                    commit = rng.NextInt64(commit, durable + 1);
                    log.SaveState(T(term), R((uint)rng.Next(5)), I(commit));
                }
                else if (op < 86 && model.Count > 0)
                {
                    var from = rng.NextInt64(first, last + 1);
                    var to = rng.NextInt64(from, last + 1);
                    AssertRange(log, model, first, from, to);
                }
                else if (op < 93)
                {
                    log.Dispose();
                    log = SegmentedLog.Open(directory, Small);
                    durable = last;
                    Assert.Equal(last, log.LastIndex.Value);
                }
                else
                {
                    // A process crash: the write buffer is lost, records already handed to the kernel survive.
                    log.CrashForTesting();
                    log = SegmentedLog.Open(directory, Small);
                    Assert.InRange(log.LastIndex.Value, durable, last);
                    model.RemoveRange((int)(log.LastIndex.Value - first + 1), (int)(last - log.LastIndex.Value));
                    durable = log.LastIndex.Value;
                }

                Assert.Equal(first, log.FirstIndex.Value);
                Assert.Equal(first + model.Count - 1, log.LastIndex.Value);
                Assert.Equal(commit, log.Metadata.CommitIndex.Value);
            }

            AssertRange(log, model, first, first, first + model.Count - 1);
            output.WriteLine($"seed {seed}: log [{first}, {first + model.Count - 1}], {log.SegmentCount} segments, commit {commit}");
        }
        finally
        {
            log.Dispose();
        }
    }

    [Fact]
    public void TruncateThenShorterAppend_NeverResurrectsOldRecords()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 100; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 60));
            }

            log.Flush();
            log.TruncateSuffix(I(41));
            log.Append(T(2), TestData.Bytes(1000, 8)); // index 41, far shorter than the old 41..100
            log.Flush();
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        Assert.Equal(41, reopened.LastIndex.Value);
        Assert.Equal(2, reopened.LastTerm.Value);
        foreach (var entry in reopened.Read(I(41), I(41)))
        {
            Assert.Equal(TestData.Bytes(1000, 8), entry.Payload.ToArray());
        }
    }

    [Fact]
    public void TruncateSuffix_IsRefusedAtOrBelowTheCommitIndex()
    {
        using var log = SegmentedLog.Open(directory, Small);
        for (var i = 0; i < 10; i++)
        {
            log.Append(T(1), TestData.Bytes(i, 10));
        }

        log.Flush();
        log.SaveState(T(1), R(1), I(6));
        Assert.Throws<InvalidOperationException>(() => log.TruncateSuffix(I(6)));
        log.TruncateSuffix(I(7));
        Assert.Equal(6, log.LastIndex.Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.Append(T(0), TestData.Bytes(0, 1))); // terms never go down
    }

    [Fact]
    public void TornTail_IsTruncated_AndFlushedRecordsStay()
    {
        string tail;
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 20; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 50));
            }

            log.Flush();
            for (var i = 20; i < 25; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 50));
            }

            foreach (var unused in log.Read(I(25), I(25)))
            {
                // reading hands the buffered records to the kernel, as a later pwrite would
            }

            tail = Directory.GetFiles(directory, "*.seg").Order(StringComparer.Ordinal).Last();
            log.CrashForTesting();
        }

        // Tear record 23: keep its header, zero the second half of its payload (a write cut at a sector boundary).
        var offset = RecordOffset(tail, 23);
        using (var file = File.OpenHandle(tail, FileMode.Open, FileAccess.ReadWrite))
        {
            RandomAccess.Write(file, new byte[40], offset + LogRecord.HeaderSize + 16);
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        Assert.Equal(22, reopened.LastIndex.Value);
        AssertRecords(reopened, Enumerable.Range(0, 22).Select(i => TestData.Bytes(i, 50)).ToList(), 1);
        reopened.Append(T(2), TestData.Bytes(99, 7));
        reopened.Flush();
        Assert.Equal(23, reopened.LastIndex.Value);
    }

    [Fact]
    public void BitFlipInADurableRecord_IsReportedWithSegmentAndOffset_NotTruncated()
    {
        string tail;
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 10; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 40));
            }

            log.Flush();
            log.Append(T(1), TestData.Bytes(10, 40)); // written knowing 1..10 are durable
            log.Flush();
            tail = Directory.GetFiles(directory, "*.seg").Single();
        }

        var offset = RecordOffset(tail, 5);
        FlipBit(tail, offset + LogRecord.HeaderSize + 3);
        var error = Assert.Throws<InvalidDataException>(() => SegmentedLog.Open(directory, Small));
        output.WriteLine(error.Message);
        Assert.Contains(Path.GetFileName(tail), error.Message, StringComparison.Ordinal);
        Assert.Contains("offset " + offset, error.Message, StringComparison.Ordinal);
        Assert.Equal(10 * LogRecord.Size(40) + LogRecord.Size(40) + SegmentHeader.Size, NonZeroLength(tail)); // nothing was cut
    }

    [Fact]
    public void BitFlipInASealedSegment_IsReportedOnFirstRead()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 200; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 100));
            }
        }

        var first = Directory.GetFiles(directory, "*.seg").Order(StringComparer.Ordinal).First();
        FlipBit(first, RecordOffset(first, 30) + LogRecord.HeaderSize + 1);
        using var reopened = SegmentedLog.Open(directory, Small); // only the tail is checked on open
        Assert.Equal(200, reopened.LastIndex.Value);
        var error = Assert.Throws<InvalidDataException>(() =>
        {
            foreach (var unused in reopened.Read(I(1), I(2)))
            {
            }
        });
        output.WriteLine(error.Message);
        Assert.Contains(Path.GetFileName(first), error.Message, StringComparison.Ordinal);
        Assert.Contains("record 30", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Readers_KeepTheirSegmentMapped_ThroughRollOverAndCompaction()
    {
        using var log = SegmentedLog.Open(directory, Small);
        for (var i = 0; i < 50; i++)
        {
            log.Append(T(1), TestData.Bytes(i, 100));
        }

        log.Flush();
        var firstSegment = Directory.GetFiles(directory, "*.seg").Order(StringComparer.Ordinal).First();
        var seen = 0;
        foreach (var entry in log.Read(I(1), I(3)))
        {
            for (var i = 50; i < 300; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 100)); // rolls over many times
            }

            log.Flush();
            log.CompactPrefix(I(250)); // deletes the segment this entry lives in
            Assert.False(File.Exists(firstSegment));
            Assert.Equal(TestData.Bytes((int)entry.Index.Value - 1, 100), entry.Payload.ToArray()); // the mapping is still there
            seen++;
        }

        Assert.Equal(3, seen);
        Assert.Equal(251, log.FirstIndex.Value);
        Assert.Equal(250, log.Metadata.CompactedIndex.Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => log.Read(I(250), I(251)));
        AssertRecords(log, Enumerable.Range(250, 50).Select(i => TestData.Bytes(i, 100)).ToList(), 251);
    }

    [Fact]
    public async Task ConcurrentFlushes_AllComplete()
    {
        using var log = SegmentedLog.Open(directory, new LogOptions { SegmentSize = 1 << 20 });
        var tasks = new List<Task>();
        for (var i = 0; i < 64; i++)
        {
            var index = log.Append(T(1), TestData.Bytes(i, 64));
            tasks.Add(log.FlushAsync(I(index)).AsTask());
        }

        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(64, log.DurableIndex.Value);
    }

    [Fact]
    public void OtherClustersSegments_AreRefused()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            log.Append(T(1), TestData.Bytes(1, 1));
        }

        var error = Assert.Throws<InvalidDataException>(() => SegmentedLog.Open(directory, new LogOptions { SegmentSize = 8192, ClusterId = 8, NodeId = new ReplicaId(2) }));
        Assert.Contains("cluster 7", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AFailedSync_IsFatal_AndSaysWhy()
    {
        var disk = new FailingDisk();
        using (var log = SegmentedLog.Open(directory, Small with { IoObserver = disk }))
        {
            log.Append(T(1), TestData.Bytes(1, 10));
            log.Flush();
            log.Append(T(1), TestData.Bytes(2, 10));
            disk.Fail = true;
            var error = Assert.Throws<IOException>(() => log.Flush());
            Assert.Contains("fdatasync", error.Message, StringComparison.Ordinal);
            disk.Fail = false; // a retry would now succeed at the syscall level, and would lie: the log must not try
            var refused = Assert.Throws<IOException>(() => log.Append(T(1), TestData.Bytes(3, 10)));
            Assert.Contains("refuses writes", refused.Message, StringComparison.Ordinal);
            Assert.Throws<IOException>(() => log.Flush());
            Assert.NotNull(log.Failure);
            Assert.Equal(1, log.DurableIndex.Value);
        }

        using var reopened = SegmentedLog.Open(directory, Small); // a restart starts from what the disk holds
        Assert.InRange(reopened.LastIndex.Value, 1, 2);
    }

    [Fact]
    public void ATruncationThatFailsHalfWay_IsFatal_AndTheLogReopensConsistent()
    {
        var disk = new FailingDisk();
        var payloads = Enumerable.Range(0, 200).Select(i => TestData.Bytes(i, 100)).ToList();
        using (var log = SegmentedLog.Open(directory, Small with { IoObserver = disk }))
        {
            payloads.ForEach(p => log.Append(T(1), p));
            log.Flush();
            Assert.True(log.SegmentCount > 2);
            disk.Fail = true; // the later segments are deleted and the hole punched, then the fsync fails
            Assert.Throws<IOException>(() => log.TruncateSuffix(I(20)));
            Assert.Equal(19, log.LastIndex.Value); // reads never see the removed records, even now
            AssertRecords(log, payloads.Take(19).ToList(), 1);
            Assert.Throws<IOException>(() => log.Append(T(1), TestData.Bytes(0, 1)));
            log.CrashForTesting();
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        Assert.Equal(19, reopened.LastIndex.Value);
        AssertRecords(reopened, payloads.Take(19).ToList(), 1);
    }

    [Fact]
    public void MissingOrDamagedMetadata_WithSegments_IsRefused()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            log.Append(T(3), TestData.Bytes(0, 10));
            log.Flush();
            log.SaveState(T(3), R(2), I(1));
        }

        var metadata = Path.Combine(directory, "metadata");
        File.WriteAllBytes(metadata, new byte[100]); // cut short
        Assert.Contains("not a metadata file", Assert.Throws<InvalidDataException>(() => SegmentedLog.Open(directory, Small)).Message, StringComparison.Ordinal);
        File.Delete(metadata); // gone: a blank term and vote would let this node vote twice
        for (var attempt = 0; attempt < 2; attempt++)
        {
            // Refused every time: a refused open must not leave a blank file that the next open would accept.
            Assert.Contains("refusing to start with a blank term and vote", Assert.Throws<InvalidDataException>(() => SegmentedLog.Open(directory, Small)).Message, StringComparison.Ordinal);
        }

        File.WriteAllBytes(metadata, new byte[2 * LogMetadata.SlotSize]); // created but never written
        Assert.Contains("never written", Assert.Throws<InvalidDataException>(() => SegmentedLog.Open(directory, Small)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OpenFilesAndMappings_AreOnePerLiveSegment()
    {
        using var log = SegmentedLog.Open(directory, Small);
        for (var round = 0; round < 10; round++)
        {
            for (var i = 0; i < 200; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 100));
            }

            log.Flush();
            log.CompactPrefix(I(log.LastIndex.Value - 150));
        }

        var descriptors = Directory.GetFiles("/proc/self/fd").Count(fd => new FileInfo(fd).LinkTarget?.StartsWith(directory, StringComparison.Ordinal) == true);
        var mappings = File.ReadLines("/proc/self/maps").Count(line => line.Contains(directory, StringComparison.Ordinal));
        output.WriteLine($"{log.SegmentCount} live segments, {descriptors} descriptors, {mappings} mappings in {directory}");
        Assert.InRange(log.SegmentCount, 2, 5);
        Assert.Equal(log.SegmentCount + 1, descriptors); // + the metadata file
        Assert.Equal(log.SegmentCount, mappings);
    }

    [Fact]
    public void RecordTypes_SurviveReopen_AndAnUnknownTypeIsRefused()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            log.Append(T(1), [], LogRecordType.NoOp);
            log.Append(T(1), [1, 2, 3], LogRecordType.Entry);
            log.Append(T(2), [9], LogRecordType.Config);
            Assert.Throws<ArgumentOutOfRangeException>(() => log.Append(T(2), [1], (LogRecordType)9));
            log.Flush();
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        var types = new List<LogRecordType>();
        foreach (var record in reopened.Read(I(1), I(3)))
        {
            types.Add(record.Type);
        }

        Assert.Equal([LogRecordType.NoOp, LogRecordType.Entry, LogRecordType.Config], types);
    }

    [Fact]
    public void Submit_HandsRecordsToTheKernel_WithoutSyncing()
    {
        var observer = new CountingObserver();
        using var log = SegmentedLog.Open(directory, Small with { IoObserver = observer });
        var syncsBefore = observer.Syncs;
        log.Append(T(1), TestData.Bytes(1, 40));
        var writesBefore = observer.Writes;
        log.Submit();
        Assert.Equal(writesBefore + 1, observer.Writes);
        Assert.Equal(syncsBefore, observer.Syncs);
        Assert.Equal(0, log.DurableIndex.Value);
    }

    [Fact]
    public void Reset_ReplacesTheLogByASnapshotsPlace_AndSurvivesReopen()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 200; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 60));
            }

            log.Flush();
            log.SaveState(T(1), R(2), I(50));
            Assert.Throws<InvalidOperationException>(() => log.Reset(I(40), T(1))); // below the commit index
            log.Reset(I(500), T(3));
            Assert.Equal(501, log.FirstIndex.Value);
            Assert.Equal(500, log.LastIndex.Value);
            Assert.Equal(3, log.LastTerm.Value);
            Assert.Equal(500, log.DurableIndex.Value);
            Assert.Equal(3, log.TermAt(I(500)).Value);
            Assert.Equal(1, log.SegmentCount);
            Assert.Equal(501, log.Append(T(3), TestData.Bytes(501, 10)).Value);
            log.Flush();
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        Assert.Equal(501, reopened.FirstIndex.Value);
        Assert.Equal(501, reopened.LastIndex.Value);
        Assert.Equal(new LogMetadataState(T(1), R(2), I(500), I(500), T(3)), reopened.Metadata);
    }

    [Fact]
    public void AResetInterruptedAfterItsMetadata_IsFinishedOnOpen()
    {
        using (var log = SegmentedLog.Open(directory, Small))
        {
            for (var i = 0; i < 100; i++)
            {
                log.Append(T(1), TestData.Bytes(i, 60));
            }

            log.Flush();
        }

        // The crash left the metadata naming a snapshot at (300, 4) and every old segment in place.
        using (var metadata = LogMetadata.Open(Path.Combine(directory, "metadata")))
        {
            metadata.Update(metadata.State with { CompactedIndex = I(300), CompactedTerm = T(4), CommitIndex = I(300) });
        }

        using var reopened = SegmentedLog.Open(directory, Small);
        Assert.Equal(301, reopened.FirstIndex.Value);
        Assert.Equal(300, reopened.LastIndex.Value);
        Assert.Equal(4, reopened.LastTerm.Value);
        Assert.Equal(301, reopened.Append(T(4), TestData.Bytes(1, 10)).Value);
    }

    private sealed class CountingObserver : ILogIoObserver
    {
        public int Writes;
        public int Syncs;

        public void Written(string path, long offset, long length) => Writes++;

        public void Synced(string path) => Syncs++;
    }

    public void Dispose() => Directory.Delete(directory, recursive: true);

    private sealed class FailingDisk : ILogIoObserver
    {
        public bool Fail { get; set; }

        public void Written(string path, long offset, long length)
        {
        }

        public void Synced(string path)
        {
        }

        public bool AllowSync(string path) => !Fail;
    }

    private static void AssertRecords(SegmentedLog log, List<byte[]> payloads, long first)
    {
        var index = first;
        foreach (var entry in log.Read(I(first), I(first + payloads.Count - 1)))
        {
            Assert.Equal(index, entry.Index.Value);
            Assert.True(payloads[(int)(index - first)].AsSpan().SequenceEqual(entry.Payload), "payload of record " + index);
            index++;
        }

        Assert.Equal(first + payloads.Count, index);
    }

    private static void AssertRange(SegmentedLog log, List<(long Term, byte[] Payload)> model, long first, long from, long to)
    {
        var index = from;
        foreach (var entry in log.Read(I(from), I(to)))
        {
            var (term, payload) = model[(int)(index - first)];
            Assert.Equal(index, entry.Index.Value);
            Assert.Equal(term, entry.Term.Value);
            Assert.True(payload.AsSpan().SequenceEqual(entry.Payload), "payload of record " + index);
            index++;
        }

        Assert.Equal(to + 1, index);
    }

    /// <summary>The byte offset of record <paramref name="index"/> in a segment file, found by walking its headers.</summary>
    internal static long RecordOffset(string segment, long index)
    {
        var bytes = File.ReadAllBytes(segment);
        var offset = (long)SegmentHeader.Size;
        while (true)
        {
            var length = BitConverter.ToUInt32(bytes, (int)offset);
            var at = BitConverter.ToInt64(bytes, (int)offset + 16);
            if (at == index)
            {
                return offset;
            }

            offset += LogRecord.Size((int)length);
        }
    }

    private static void FlipBit(string path, long offset)
    {
        using var file = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite);
        var one = new byte[1];
        RandomAccess.Read(file, one, offset);
        one[0] ^= 0x10;
        RandomAccess.Write(file, one, offset);
    }

    private static int NonZeroLength(string path)
    {
        var bytes = File.ReadAllBytes(path);
        return Array.FindLastIndex(bytes, b => b != 0) / 8 * 8 + 8;
    }
}
