using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using FastSmr.Core.StateMachines;

namespace FastSmr.Core.Kv;

/// <summary>
/// The built-in key-value state machine: byte keys and values; put, get, delete, compare-and-set, increment.
/// Used by <c>fastsmr demo</c>, the load generator and the tests.
/// </summary>
/// <remarks>
/// The digest is kept incrementally (a sum of per-entry hashes, so it does not depend on iteration order) and costs
/// O(1) to read. Lookups probe the dictionary with spans, so reads allocate nothing; writes allocate the stored key
/// and value, which are the state itself.
/// Concurrency profile: single caller at a time (the engine serialises calls).
/// </remarks>
public sealed class KvStateMachine : IStateMachine
{
    private const ulong SeedHigh = 0x9E3779B97F4A7C15;
    private const ulong SeedLow = 0xC2B2AE3D27D4EB4F;
    private const uint SnapshotMagic = 0x4B56534E; // "NSVK"

    private readonly Dictionary<byte[], byte[]> entries = new(ByteArrayComparer.Instance);
    private readonly Dictionary<byte[], byte[]>.AlternateLookup<ReadOnlySpan<byte>> lookup;
    private ulong digestHigh;
    private ulong digestLow;
    private long bytes;

    /// <summary>Creates an empty store that holds at most <paramref name="bytesMax"/> bytes of keys and values.</summary>
    /// <param name="bytesMax">The size limit (4 GiB by default). Every replica must use the same one: whether a write
    /// fits is part of the replicated state.</param>
    public KvStateMachine(long bytesMax = DefaultBytesMax)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(bytesMax, 1);
        BytesMax = bytesMax;
        lookup = entries.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    /// <summary>The default size limit: 4 GiB of keys and values.</summary>
    public const long DefaultBytesMax = 4L << 30;

    /// <summary>
    /// The most bytes of keys and values the store holds; a write past it is answered <see cref="KvResult.Full"/> and
    /// changes nothing (the limit counts key and value bytes, not the memory the runtime adds per entry).
    /// </summary>
    public long BytesMax { get; }

    /// <summary>The bytes of keys and values held now.</summary>
    public long Bytes => bytes;

    /// <summary>The number of keys.</summary>
    public int Count => entries.Count;

    /// <summary>
    /// Reads a key directly (for tests and embedding code that does not race the apply thread). The array is the
    /// store's own and may be overwritten in place by a later put of the same size: copy what you keep.
    /// </summary>
    public bool TryGetValue(ReadOnlySpan<byte> key, out byte[] value) => lookup.TryGetValue(key, out value!);

    /// <inheritdoc />
    public void Apply(in ApplyContext context, ReadOnlySpan<byte> command, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!KvCommand.TryParse(command, out var op, out var key, out var rest))
        {
            WriteResult(output, KvResult.Malformed);
            return;
        }

        switch (op)
        {
            case KvOp.Put:
                if (!KvCommand.TryReadBlob(ref rest, out var value) || !rest.IsEmpty)
                {
                    WriteResult(output, KvResult.Malformed);
                    return;
                }

                WriteResult(output, TrySet(key, value));
                return;
            case KvOp.Get:
                Read(key, output);
                return;
            case KvOp.Delete:
                if (lookup.Remove(key, out var removedKey, out var removedValue))
                {
                    Unaccount(removedKey, removedValue);
                    WriteResult(output, KvResult.Ok);
                }
                else
                {
                    WriteResult(output, KvResult.NotFound);
                }

                return;
            case KvOp.CompareAndSet:
                CompareAndSet(key, rest, output);
                return;
            case KvOp.Increment:
                Increment(key, rest, output);
                return;
            default:
                WriteResult(output, KvResult.Malformed);
                return;
        }
    }

    /// <inheritdoc />
    /// <remarks>Only Get is a query; any other operation is answered with <see cref="KvResult.Malformed"/>.</remarks>
    public void Query(ReadOnlySpan<byte> query, IBufferWriter<byte> output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (!KvCommand.TryParse(query, out var op, out var key, out var rest) || op != KvOp.Get || !rest.IsEmpty)
        {
            WriteResult(output, KvResult.Malformed);
            return;
        }

        Read(key, output);
    }

    /// <inheritdoc />
    public void WriteSnapshot(Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteUInt32LittleEndian(header, SnapshotMagic);
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], entries.Count);
        destination.Write(header);
        foreach (var (key, value) in entries)
        {
            BinaryPrimitives.WriteInt32LittleEndian(header, key.Length);
            BinaryPrimitives.WriteInt32LittleEndian(header[4..], value.Length);
            destination.Write(header);
            destination.Write(key);
            destination.Write(value);
        }
    }

    /// <inheritdoc />
    public void RestoreSnapshot(Stream source)
    {
        ArgumentNullException.ThrowIfNull(source);
        Span<byte> header = stackalloc byte[8];
        source.ReadExactly(header);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header) != SnapshotMagic)
        {
            throw new InvalidDataException("not a key-value snapshot");
        }

        var count = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
        if (count < 0)
        {
            throw new InvalidDataException("negative key count in snapshot");
        }

        entries.Clear();
        digestHigh = 0;
        digestLow = 0;
        bytes = 0;
        for (var i = 0; i < count; i++)
        {
            source.ReadExactly(header);
            var keyLength = BinaryPrimitives.ReadInt32LittleEndian(header);
            var valueLength = BinaryPrimitives.ReadInt32LittleEndian(header[4..]);
            if (keyLength is < 0 or > KvCommand.KeySizeMax || valueLength is < 0 or > KvCommand.ValueSizeMax)
            {
                throw new InvalidDataException("bad entry length in snapshot");
            }

            if (bytes + keyLength + valueLength > BytesMax)
            {
                throw new InvalidDataException("snapshot larger than the store's size limit");
            }

            if (source.CanSeek && source.Length - source.Position < (long)keyLength + valueLength)
            {
                throw new InvalidDataException("snapshot entry longer than what is left of the snapshot"); // before allocating it
            }

            var key = new byte[keyLength];
            var value = new byte[valueLength];
            source.ReadExactly(key);
            source.ReadExactly(value);
            if (!entries.TryAdd(key, value))
            {
                throw new InvalidDataException("a key appears twice in the snapshot");
            }

            Account(key, value);
        }
    }

    /// <inheritdoc />
    public StateDigest GetDigest() => new(digestHigh, digestLow ^ (ulong)entries.Count);

    private static void WriteResult(IBufferWriter<byte> output, KvResult result)
    {
        output.GetSpan(1)[0] = (byte)result;
        output.Advance(1);
    }

    private void Read(ReadOnlySpan<byte> key, IBufferWriter<byte> output)
    {
        if (!lookup.TryGetValue(key, out var value))
        {
            WriteResult(output, KvResult.NotFound);
            return;
        }

        var span = output.GetSpan(1 + value.Length);
        span[0] = (byte)KvResult.Ok;
        value.CopyTo(span[1..]);
        output.Advance(1 + value.Length);
    }

    private void CompareAndSet(ReadOnlySpan<byte> key, ReadOnlySpan<byte> rest, IBufferWriter<byte> output)
    {
        if (rest.IsEmpty)
        {
            WriteResult(output, KvResult.Malformed);
            return;
        }

        var expectedPresent = rest[0] != 0;
        rest = rest[1..];
        if (!KvCommand.TryReadBlob(ref rest, out var expected) || !KvCommand.TryReadBlob(ref rest, out var newValue) || !rest.IsEmpty)
        {
            WriteResult(output, KvResult.Malformed);
            return;
        }

        var present = lookup.TryGetValue(key, out var current);
        var matches = expectedPresent ? present && current!.AsSpan().SequenceEqual(expected) : !present;
        if (!matches)
        {
            WriteResult(output, KvResult.Mismatch);
            return;
        }

        WriteResult(output, TrySet(key, newValue));
    }

    private void Increment(ReadOnlySpan<byte> key, ReadOnlySpan<byte> rest, IBufferWriter<byte> output)
    {
        if (rest.Length != 8)
        {
            WriteResult(output, KvResult.Malformed);
            return;
        }

        var delta = BinaryPrimitives.ReadInt64LittleEndian(rest);
        long current = 0;
        if (lookup.TryGetValue(key, out var existing))
        {
            if (existing.Length != 8)
            {
                WriteResult(output, KvResult.TypeMismatch);
                return;
            }

            current = BinaryPrimitives.ReadInt64LittleEndian(existing);
        }

        var next = unchecked(current + delta);
        Span<byte> encoded = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(encoded, next);
        if (TrySet(key, encoded) is var result && result != KvResult.Ok)
        {
            WriteResult(output, result);
            return;
        }

        var span = output.GetSpan(9);
        span[0] = (byte)KvResult.Ok;
        encoded.CopyTo(span[1..]);
        output.Advance(9);
    }

    /// <summary>Stores the value unless it is too large or the store would pass its limit (then nothing changes).</summary>
    private KvResult TrySet(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        if (value.Length > KvCommand.ValueSizeMax)
        {
            return KvResult.TooLarge;
        }

        // One lookup per write: it decides whether the write fits and where it goes.
        var found = lookup.TryGetValue(key, out var storedKey, out var old);
        var held = found ? key.Length + old!.Length : 0;
        if (bytes - held + key.Length + value.Length > BytesMax)
        {
            return KvResult.Full;
        }

        if (!found)
        {
            var newKey = key.ToArray();
            var newValue = value.ToArray();
            entries.Add(newKey, newValue);
            Account(newKey, newValue);
            return KvResult.Ok;
        }

        Unaccount(storedKey!, old!);
        if (old!.Length == value.Length)
        {
            // Reuse the stored array: an overwrite of an equal-sized value allocates nothing.
            value.CopyTo(old);
            Account(storedKey!, old);
            return KvResult.Ok;
        }

        var replacement = value.ToArray();
        entries[storedKey!] = replacement;
        Account(storedKey!, replacement);
        return KvResult.Ok;
    }

    private void Account(byte[] key, byte[] value)
    {
        bytes += key.Length + value.Length;
        var (high, low) = EntryHash(key, value);
        digestHigh = unchecked(digestHigh + high);
        digestLow = unchecked(digestLow + low);
    }

    private void Unaccount(byte[] key, byte[] value)
    {
        bytes -= key.Length + value.Length;
        var (high, low) = EntryHash(key, value);
        digestHigh = unchecked(digestHigh - high);
        digestLow = unchecked(digestLow - low);
    }

    private static (ulong High, ulong Low) EntryHash(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        // Hash the key, then chain the value with the key's hash as seed, so (k, v) and (v, k) differ.
        var keyHigh = XxHash3.HashToUInt64(key, unchecked((long)SeedHigh));
        var keyLow = XxHash3.HashToUInt64(key, unchecked((long)SeedLow));
        return (XxHash3.HashToUInt64(value, unchecked((long)keyHigh)), XxHash3.HashToUInt64(value, unchecked((long)keyLow)));
    }
}
