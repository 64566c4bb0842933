using System.Buffers.Binary;

namespace FastSmr.Core.Kv;

/// <summary>
/// Encodes and decodes key-value commands. Layout (little-endian): <c>u8 op, u16 key length, key</c>, then
/// Put: <c>u32 value length, value</c>; CompareAndSet: <c>u8 expected present, u32 expected length, expected,
/// u32 new length, new</c>; Increment: <c>i64 delta</c>; Get and Delete: nothing more.
/// </summary>
public static class KvCommand
{
    /// <summary>The largest key in bytes.</summary>
    public const int KeySizeMax = ushort.MaxValue;

    /// <summary>The largest value the store keeps (16 MiB); a larger one is answered <see cref="KvResult.TooLarge"/>.</summary>
    public const int ValueSizeMax = 16 << 20;

    /// <summary>The encoded size of a Put.</summary>
    public static int PutSize(int keyLength, int valueLength) => 3 + keyLength + 4 + valueLength;

    /// <summary>The encoded size of a Get or a Delete.</summary>
    public static int KeyOnlySize(int keyLength) => 3 + keyLength;

    /// <summary>The encoded size of an Increment.</summary>
    public static int IncrementSize(int keyLength) => 3 + keyLength + 8;

    /// <summary>The encoded size of a CompareAndSet.</summary>
    public static int CompareAndSetSize(int keyLength, int expectedLength, int newLength) =>
        3 + keyLength + 1 + 4 + expectedLength + 4 + newLength;

    /// <summary>Writes a Put and returns its size.</summary>
    public static int WritePut(Span<byte> destination, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var p = WriteKey(destination, KvOp.Put, key);
        p += WriteBlob(destination[p..], value);
        return p;
    }

    /// <summary>Writes a Get and returns its size.</summary>
    public static int WriteGet(Span<byte> destination, ReadOnlySpan<byte> key) => WriteKey(destination, KvOp.Get, key);

    /// <summary>Writes a Delete and returns its size.</summary>
    public static int WriteDelete(Span<byte> destination, ReadOnlySpan<byte> key) => WriteKey(destination, KvOp.Delete, key);

    /// <summary>Writes an Increment and returns its size.</summary>
    public static int WriteIncrement(Span<byte> destination, ReadOnlySpan<byte> key, long delta)
    {
        var p = WriteKey(destination, KvOp.Increment, key);
        BinaryPrimitives.WriteInt64LittleEndian(destination[p..], delta);
        return p + 8;
    }

    /// <summary>Writes a CompareAndSet and returns its size. A null <paramref name="expected"/> means "the key must be absent".</summary>
    public static int WriteCompareAndSet(
        Span<byte> destination,
        ReadOnlySpan<byte> key,
        ReadOnlySpan<byte> expected,
        bool expectedPresent,
        ReadOnlySpan<byte> newValue
    )
    {
        var p = WriteKey(destination, KvOp.CompareAndSet, key);
        destination[p++] = expectedPresent ? (byte)1 : (byte)0;
        p += WriteBlob(destination[p..], expectedPresent ? expected : default);
        p += WriteBlob(destination[p..], newValue);
        return p;
    }

    /// <summary>Encodes a Put into a new array (convenience for tests and samples; the load path uses the span writers).</summary>
    public static byte[] Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var bytes = new byte[PutSize(key.Length, value.Length)];
        WritePut(bytes, key, value);
        return bytes;
    }

    /// <summary>Encodes a Get into a new array.</summary>
    public static byte[] Get(ReadOnlySpan<byte> key)
    {
        var bytes = new byte[KeyOnlySize(key.Length)];
        WriteGet(bytes, key);
        return bytes;
    }

    /// <summary>Encodes a Delete into a new array.</summary>
    public static byte[] Delete(ReadOnlySpan<byte> key)
    {
        var bytes = new byte[KeyOnlySize(key.Length)];
        WriteDelete(bytes, key);
        return bytes;
    }

    /// <summary>Encodes an Increment into a new array.</summary>
    public static byte[] Increment(ReadOnlySpan<byte> key, long delta)
    {
        var bytes = new byte[IncrementSize(key.Length)];
        WriteIncrement(bytes, key, delta);
        return bytes;
    }

    /// <summary>Encodes a CompareAndSet into a new array; a null <paramref name="expected"/> means "the key must be absent".</summary>
    public static byte[] CompareAndSet(ReadOnlySpan<byte> key, byte[]? expected, ReadOnlySpan<byte> newValue)
    {
        var bytes = new byte[CompareAndSetSize(key.Length, expected?.Length ?? 0, newValue.Length)];
        WriteCompareAndSet(bytes, key, expected, expected is not null, newValue);
        return bytes;
    }

    /// <summary>Parses a command. Returns false for malformed input (never throws on bad bytes).</summary>
    public static bool TryParse(ReadOnlySpan<byte> command, out KvOp op, out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> rest)
    {
        op = default;
        key = default;
        rest = default;
        if (command.Length < 3)
        {
            return false;
        }

        op = (KvOp)command[0];
        int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(command[1..]);
        if (command.Length - 3 < keyLength)
        {
            return false;
        }

        key = command.Slice(3, keyLength);
        rest = command[(3 + keyLength)..];
        return op is >= KvOp.Put and <= KvOp.Increment;
    }

    /// <summary>Reads a length-prefixed blob. Returns false when truncated.</summary>
    public static bool TryReadBlob(ref ReadOnlySpan<byte> source, out ReadOnlySpan<byte> blob)
    {
        blob = default;
        if (source.Length < 4)
        {
            return false;
        }

        var length = BinaryPrimitives.ReadUInt32LittleEndian(source);
        if (length > (uint)(source.Length - 4))
        {
            return false;
        }

        blob = source.Slice(4, (int)length);
        source = source[(4 + (int)length)..];
        return true;
    }

    private static int WriteKey(Span<byte> destination, KvOp op, ReadOnlySpan<byte> key)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(key.Length, KeySizeMax);
        destination[0] = (byte)op;
        BinaryPrimitives.WriteUInt16LittleEndian(destination[1..], (ushort)key.Length);
        key.CopyTo(destination[3..]);
        return 3 + key.Length;
    }

    private static int WriteBlob(Span<byte> destination, ReadOnlySpan<byte> blob)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(destination, (uint)blob.Length);
        blob.CopyTo(destination[4..]);
        return 4 + blob.Length;
    }
}
