using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FastSmr;

/// <summary>A replica's id within its cluster: 1 to 2^31 − 1; 0 means "none" (no leader known, no vote given).</summary>
/// <remarks>A distinct type so that an id can never be mixed up with a count, a port or an index.</remarks>
/// <param name="Value">The raw id.</param>
[JsonConverter(typeof(ReplicaIdJsonConverter))]
public readonly record struct ReplicaId(uint Value) : IComparable<ReplicaId>
{
    /// <summary>No replica.</summary>
    public static ReplicaId None => default;

    /// <summary>Whether this names a replica (is not <see cref="None"/>).</summary>
    public bool IsSome => Value != 0;

    /// <inheritdoc />
    public int CompareTo(ReplicaId other) => Value.CompareTo(other.Value);

    /// <summary>Compares two ids.</summary>
    public static bool operator <(ReplicaId left, ReplicaId right) => left.Value < right.Value;

    /// <summary>Compares two ids.</summary>
    public static bool operator >(ReplicaId left, ReplicaId right) => left.Value > right.Value;

    /// <summary>Compares two ids.</summary>
    public static bool operator <=(ReplicaId left, ReplicaId right) => left.Value <= right.Value;

    /// <summary>Compares two ids.</summary>
    public static bool operator >=(ReplicaId left, ReplicaId right) => left.Value >= right.Value;

    /// <inheritdoc />
    public override string ToString() => Value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>Reads and writes a <see cref="ReplicaId"/> as its bare number, so configuration files say <c>"Id": 1</c>.</summary>
public sealed class ReplicaIdJsonConverter : JsonConverter<ReplicaId>
{
    /// <inheritdoc />
    public override ReplicaId Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) => new(reader.GetUInt32());

    /// <inheritdoc />
    public override void Write(Utf8JsonWriter writer, ReplicaId value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteNumberValue(value.Value);
    }

    /// <inheritdoc />
    public override ReplicaId ReadAsPropertyName(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options) =>
        uint.TryParse(reader.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out var id)
            ? new ReplicaId(id)
            : throw new JsonException("a replica id must be a number");

    /// <inheritdoc />
    public override void WriteAsPropertyName(Utf8JsonWriter writer, ReplicaId value, JsonSerializerOptions options)
    {
        ArgumentNullException.ThrowIfNull(writer);
        writer.WritePropertyName(value.ToString());
    }
}
