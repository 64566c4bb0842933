using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using FastSmr.Core;
using FastSmr.Core.Kv;
using FastSmr.Core.StateMachines;

namespace FastSmr.Tests;

public class KvStateMachineTests
{
    private static (KvResult Result, byte[] Payload) Apply(KvStateMachine kv, byte[] command, long index = 1)
    {
        var output = new ArrayBufferWriter<byte>();
        kv.Apply(new ApplyContext(new LogIndex(index), 0, 0, 0, 0), command, output);
        var bytes = output.WrittenSpan.ToArray();
        return ((KvResult)bytes[0], bytes[1..]);
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void PutGetDelete_BehaveLikeADictionary()
    {
        var kv = new KvStateMachine();
        Assert.Equal(KvResult.NotFound, Apply(kv, KvCommand.Get(B("a"))).Result);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Put(B("a"), B("1"))).Result);
        Assert.Equal(B("1"), Apply(kv, KvCommand.Get(B("a"))).Payload);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Put(B("a"), B("22"))).Result);
        Assert.Equal(B("22"), Apply(kv, KvCommand.Get(B("a"))).Payload);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Delete(B("a"))).Result);
        Assert.Equal(KvResult.NotFound, Apply(kv, KvCommand.Delete(B("a"))).Result);
        Assert.Equal(KvResult.NotFound, Apply(kv, KvCommand.Get(B("a"))).Result);
        Assert.Equal(0, kv.Count);
    }

    [Fact]
    public void CompareAndSet_SucceedsOnlyAgainstTheExpectedValue()
    {
        var kv = new KvStateMachine();
        Assert.Equal(KvResult.Mismatch, Apply(kv, KvCommand.CompareAndSet(B("k"), B("x"), B("y"))).Result);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.CompareAndSet(B("k"), null, B("v1"))).Result);
        Assert.Equal(KvResult.Mismatch, Apply(kv, KvCommand.CompareAndSet(B("k"), null, B("v2"))).Result);
        Assert.Equal(KvResult.Mismatch, Apply(kv, KvCommand.CompareAndSet(B("k"), B("nope"), B("v2"))).Result);
        Assert.Equal(B("v1"), Apply(kv, KvCommand.Get(B("k"))).Payload);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.CompareAndSet(B("k"), B("v1"), B("v2"))).Result);
        Assert.Equal(B("v2"), Apply(kv, KvCommand.Get(B("k"))).Payload);
    }

    [Fact]
    public void Increment_AddsToAbsentAsZero_AndRefusesNonIntegers()
    {
        var kv = new KvStateMachine();
        var (result, payload) = Apply(kv, KvCommand.Increment(B("c"), 5));
        Assert.Equal(KvResult.Ok, result);
        Assert.Equal(5, BinaryPrimitives.ReadInt64LittleEndian(payload));
        Assert.Equal(2, BinaryPrimitives.ReadInt64LittleEndian(Apply(kv, KvCommand.Increment(B("c"), -3)).Payload));
        Apply(kv, KvCommand.Put(B("s"), B("abc")));
        Assert.Equal(KvResult.TypeMismatch, Apply(kv, KvCommand.Increment(B("s"), 1)).Result);
        Assert.Equal(B("abc"), Apply(kv, KvCommand.Get(B("s"))).Payload);
    }

    [Theory]
    [InlineData(new byte[0])]
    [InlineData(new byte[] { 1 })]
    [InlineData(new byte[] { 1, 5, 0, 1 })]
    [InlineData(new byte[] { 9, 1, 0, 65 })]
    [InlineData(new byte[] { 1, 1, 0, 65, 255, 255, 255, 255 })]
    [InlineData(new byte[] { 5, 1, 0, 65, 1, 2 })]
    [InlineData(new byte[] { 4, 1, 0, 65, 1 })]
    public void MalformedCommand_AnswersMalformed_AndChangesNothing(byte[] command)
    {
        var kv = new KvStateMachine();
        Apply(kv, KvCommand.Put(B("A"), B("keep")));
        var digest = kv.GetDigest();
        Assert.Equal(KvResult.Malformed, Apply(kv, command).Result);
        Assert.Equal(digest, kv.GetDigest());
    }

    [Fact]
    public void Digest_DependsOnContentNotOnHistoryOrOrder()
    {
        var a = new KvStateMachine();
        var b = new KvStateMachine();
        Apply(a, KvCommand.Put(B("x"), B("1")));
        Apply(a, KvCommand.Put(B("y"), B("2")));
        Apply(b, KvCommand.Put(B("y"), B("0")));
        Apply(b, KvCommand.Put(B("z"), B("9")));
        Apply(b, KvCommand.Put(B("x"), B("1")));
        Apply(b, KvCommand.Put(B("y"), B("2")));
        Assert.NotEqual(a.GetDigest(), b.GetDigest());
        Apply(b, KvCommand.Delete(B("z")));
        Assert.Equal(a.GetDigest(), b.GetDigest());
        Apply(b, KvCommand.Put(B("y"), B("3")));
        Assert.NotEqual(a.GetDigest(), b.GetDigest());
        Assert.NotEqual(default, a.GetDigest());
    }

    [Fact]
    public void Digest_KeyAndValueSwapped_Differ()
    {
        var a = new KvStateMachine();
        var b = new KvStateMachine();
        Apply(a, KvCommand.Put(B("k"), B("v")));
        Apply(b, KvCommand.Put(B("v"), B("k")));
        Assert.NotEqual(a.GetDigest(), b.GetDigest());
    }

    [Fact]
    public void Snapshot_RestoresTheSameStateAndDigest()
    {
        var kv = new KvStateMachine();
        var random = new Random(5);
        for (var i = 0; i < 500; i++)
        {
            var key = BitConverter.GetBytes(random.Next(100));
            var value = new byte[random.Next(0, 40)];
            random.NextBytes(value);
            Apply(kv, random.Next(5) == 0 ? KvCommand.Delete(key) : KvCommand.Put(key, value));
        }

        using var stream = new MemoryStream();
        kv.WriteSnapshot(stream);
        stream.Position = 0;
        var restored = new KvStateMachine();
        Apply(restored, KvCommand.Put(B("stale"), B("gone after restore")));
        restored.RestoreSnapshot(stream);
        Assert.Equal(kv.GetDigest(), restored.GetDigest());
        Assert.Equal(kv.Count, restored.Count);
        Assert.False(restored.TryGetValue(B("stale"), out _));
    }

    [Fact]
    public void Snapshot_Garbage_IsRefused()
    {
        var kv = new KvStateMachine();
        Assert.Throws<InvalidDataException>(() => kv.RestoreSnapshot(new MemoryStream([1, 2, 3, 4, 5, 6, 7, 8])));
    }

    [Fact]
    public void Query_OnlyServesGets()
    {
        var kv = new KvStateMachine();
        Apply(kv, KvCommand.Put(B("q"), B("1")));
        var output = new ArrayBufferWriter<byte>();
        kv.Query(KvCommand.Get(B("q")), output);
        Assert.Equal(new byte[] { 0, (byte)'1' }, output.WrittenSpan.ToArray());
        output.ResetWrittenCount();
        kv.Query(KvCommand.Put(B("q"), B("2")), output);
        Assert.Equal((byte)KvResult.Malformed, output.WrittenSpan[0]);
    }

    [Fact]
    public void SizeLimits_AreAnsweredWithAnError_AndChangeNothing()
    {
        // A state machine must never throw on a command (it would stop every replica at the same entry): the store
        // answers TooLarge and Full instead, deterministically, so every replica gives the same answer.
        var kv = new KvStateMachine(bytesMax: 100);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Put(B("a"), new byte[60])).Result);
        var digest = kv.GetDigest();
        Assert.Equal(KvResult.Full, Apply(kv, KvCommand.Put(B("b"), new byte[60])).Result);
        Assert.Equal(KvResult.Full, Apply(kv, KvCommand.CompareAndSet(B("c"), null, new byte[60])).Result);
        Assert.Equal(digest, kv.GetDigest());
        Assert.Equal(61, kv.Bytes);

        // Replacing a value counts only the difference; deleting frees the space.
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Put(B("a"), new byte[99])).Result);
        Assert.Equal(KvResult.Full, Apply(kv, KvCommand.Increment(B("n"), 1)).Result);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Delete(B("a"))).Result);
        Assert.Equal(0, kv.Bytes);
        Assert.Equal(KvResult.Ok, Apply(kv, KvCommand.Increment(B("n"), 1)).Result);

        var large = new KvStateMachine();
        Assert.Equal(KvResult.TooLarge, Apply(large, KvCommand.Put(B("big"), new byte[KvCommand.ValueSizeMax + 1])).Result);
        Assert.Equal(0, large.Count);
    }

    [Fact]
    public void Snapshot_WithHugeLengthsOrDuplicateKeys_IsRefused_WithoutAllocatingThem()
    {
        var kv = new KvStateMachine();
        var snapshot = new MemoryStream();
        new KvStateMachine().WriteSnapshot(snapshot);
        var bytes = snapshot.ToArray();
        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 1); // one entry...
        var huge = bytes.Concat(new byte[] { 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0x7F, (byte)'k' }).ToArray(); // ...of 2 GiB
        Assert.Contains("length", Assert.Throws<InvalidDataException>(() => kv.RestoreSnapshot(new MemoryStream(huge))).Message, StringComparison.Ordinal);

        var small = new KvStateMachine(bytesMax: 10);
        var full = new KvStateMachine();
        Apply(full, KvCommand.Put(B("a"), new byte[20]));
        var fullSnapshot = new MemoryStream();
        full.WriteSnapshot(fullSnapshot);
        fullSnapshot.Position = 0;
        Assert.Throws<InvalidDataException>(() => small.RestoreSnapshot(fullSnapshot));

        System.Buffers.Binary.BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), 2);
        byte[] entry = [1, 0, 0, 0, 1, 0, 0, 0, (byte)'k', (byte)'v'];
        var twice = bytes.Concat(entry).Concat(entry).ToArray();
        Assert.Contains("twice", Assert.Throws<InvalidDataException>(() => kv.RestoreSnapshot(new MemoryStream(twice))).Message, StringComparison.Ordinal);
    }
}
