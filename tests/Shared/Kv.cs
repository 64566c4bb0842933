using System.Buffers.Binary;
using System.Text;
using FastSmr.Core.Kv;

namespace FastSmr.Tests;

/// <summary>Small helpers for building KV commands and reading KV outputs in tests.</summary>
internal static class Kv
{
    public static byte[] Key(string s) => Encoding.UTF8.GetBytes(s);

    public static KvResult Result(byte[] output) => (KvResult)output[0];

    public static long Counter(byte[] output) => BinaryPrimitives.ReadInt64LittleEndian(output.AsSpan(1));

    public static string Text(byte[] output) => Encoding.UTF8.GetString(output.AsSpan(1));
}
