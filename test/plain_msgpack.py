"""factrl's wire format read and written by the standard `msgpack` library alone (docs/protocol.md).

The tests drive it (test/plain-msgpack.ts) to prove that a Python actor can take part:

    python3 plain_msgpack.py decode < ["<base64 msgpack>", ...]  ->  [<JSON view>, ...]
    python3 plain_msgpack.py encode < [<JSON view>, ...]         ->  ["<base64 msgpack>", ...]

Any msgpack extension type is refused: factrl's messages must not need one. In the JSON view a
typed array `{dtype, data}` is {"$dtype": dtype, "$values": [...]} and other bin is {"$bytes": [...]}.
JSON has no -0, so a -0 in "$values" comes to `encode` as the string "-0". A decode that fails gives
{"$error": why} for that message.
"""

import base64
import json
import struct
import sys

import msgpack

# numpy dtype name -> struct code; the data is little-endian.
STRUCT_CODES = {
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}


def refuse_extension(code, data):
    raise ValueError(f"msgpack extension type {code} ({len(data)} bytes): not plain msgpack")


def to_json_view(value):
    if isinstance(value, dict):
        if set(value) == {"dtype", "data"} and isinstance(value["data"], bytes):
            code = STRUCT_CODES[value["dtype"]]
            count = len(value["data"]) // struct.calcsize(code)
            return {"$dtype": value["dtype"], "$values": list(struct.unpack(f"<{count}{code}", value["data"]))}
        return {key: to_json_view(item) for key, item in value.items()}
    if isinstance(value, list):
        return [to_json_view(item) for item in value]
    if isinstance(value, bytes):
        return {"$bytes": list(value)}
    return value


def from_json_view(value):
    if isinstance(value, dict):
        if set(value) == {"$dtype", "$values"}:
            values = [float(item) if isinstance(item, str) else item for item in value["$values"]]
            data = struct.pack(f"<{len(values)}{STRUCT_CODES[value['$dtype']]}", *values)
            return {"dtype": value["$dtype"], "data": data}
        if set(value) == {"$bytes"}:
            return bytes(value["$bytes"])
        return {key: from_json_view(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_json_view(item) for item in value]
    return value


def decode(message):
    try:
        raw = msgpack.unpackb(base64.b64decode(message), raw=False, strict_map_key=True, ext_hook=refuse_extension)
    except Exception as error:  # reported per message, so the test names the one that failed
        return {"$error": f"{type(error).__name__}: {error}"}
    return to_json_view(raw)


def encode(view):
    # use_bin_type: bytes as bin, str as str (msgpack's default since 1.0, stated for older ones).
    return base64.b64encode(msgpack.packb(from_json_view(view), use_bin_type=True)).decode("ascii")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else ""
    if mode not in ("decode", "encode"):
        sys.exit("usage: plain_msgpack.py decode|encode < JSON list")
    items = json.load(sys.stdin)
    json.dump([decode(item) if mode == "decode" else encode(item) for item in items], sys.stdout)


if __name__ == "__main__":
    main()
