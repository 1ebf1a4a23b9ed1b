#!/usr/bin/python3
"""Safetensors interop between PyTorch and Ember, without the `safetensors` package.

Debian has no python3-safetensors, so this script implements the format from its specification
(https://github.com/huggingface/safetensors#format) with struct + json + torch (1.13):
8-byte little-endian header length N, N bytes of JSON header (padded with spaces to a multiple
of 8), then the raw little-endian tensor bytes; every header entry is
{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]} relative to the data start, and
"__metadata__" is a {str: str} map.

  /usr/bin/python3 tests/golden/safetensors_interop.py write tests/golden/interop_torch.safetensors
      writes the committed golden file that tests/test_io.cpp reads (values: expected() below)
  /usr/bin/python3 tests/golden/safetensors_interop.py verify FILE
      strictly checks a file Ember wrote (tests/test_io.cpp writes the same tensors and metadata)
      and compares every tensor bit for bit with expected(); exit status 0 on success
  /usr/bin/python3 tests/golden/safetensors_interop.py selftest
      writes to a temporary file and verifies it

Keep expected() and kInteropExpected in tests/test_io.cpp in sync.
"""
import json
import os
import struct
import sys
import tempfile

import torch

DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I32": torch.int32,
    "I64": torch.int64,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "F32": torch.float32,
    "F64": torch.float64,
}
CODES = {v: k for k, v in DTYPES.items()}

METADATA = {"format": "pt", "source": "tests/golden/safetensors_interop.py"}


def expected():
    """The tensors both sides write and read: every dtype, a 0-d and an empty tensor."""
    return {
        "a_f32": torch.tensor([[0.5, -1.25, 3.0], [1024.0, -0.0, 0.1]], dtype=torch.float32),
        "b_f64": torch.tensor(3.141592653589793, dtype=torch.float64),
        "c_f16": torch.tensor([1.0, -2.5, 65504.0, 2.0**-24, float("inf")], dtype=torch.float16),
        "d_bf16": torch.tensor([[1.0, -3.0], [0.15625, 2.0**100]], dtype=torch.bfloat16),
        "e_i64": torch.tensor([9007199254740993, -1, -9223372036854775807], dtype=torch.int64),
        "f_i32": torch.tensor([[2147483647, -2147483648], [7, 0]], dtype=torch.int32),
        "g_u8": torch.tensor([0, 128, 255], dtype=torch.uint8),
        "h_bool": torch.tensor([True, False, False, True, True]),
        "i_empty": torch.zeros((0, 3), dtype=torch.float32),
        "j_f32_3d": (torch.arange(4, dtype=torch.float32) * 0.25).reshape(2, 1, 2),
    }


def tensor_bytes(t):
    t = t.contiguous().reshape(-1)
    if t.dtype == torch.bool:
        return t.to(torch.uint8).numpy().tobytes()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().tobytes()
    return t.numpy().tobytes()  # numpy writes native order; this script requires little-endian


def write(path, tensors, metadata):
    assert sys.byteorder == "little"
    # As the reference writer: larger element sizes first (keeps every tensor aligned), then by name.
    names = sorted(tensors, key=lambda n: (-tensors[n].element_size(), n))
    header = {"__metadata__": metadata}
    blobs, offset = [], 0
    for n in names:
        b = tensor_bytes(tensors[n])
        header[n] = {"dtype": CODES[tensors[n].dtype], "shape": list(tensors[n].shape),
                     "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def crc32c(data):
    """CRC-32C (Castagnoli, reflected), bit by bit: slow, but independent of Ember's tables."""
    c = 0xFFFFFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
    return c ^ 0xFFFFFFFF


def read(path):
    """Reads and strictly validates a file; returns (tensors, metadata)."""
    data = open(path, "rb").read()
    assert len(data) >= 8, "file too short"
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0, f"header length {n} is not a multiple of 8 (Ember pads it like the reference writer)"
    assert 8 + n <= len(data), "header runs past the end of the file"

    def no_duplicates(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
        return dict(pairs)

    header = json.loads(data[8:8 + n].decode("utf-8"), object_pairs_hook=no_duplicates)
    buf = data[8 + n:]
    # Ember's checksum, recomputed from its definition (include/ember/io/safetensors.hpp): CRC-32C
    # of the header with sorted keys and the value zeroed, then of the data.
    crc = header.get("__metadata__", {}).get("ember.crc32c")
    if crc is not None:
        canonical = json.loads(json.dumps(header))
        canonical["__metadata__"]["ember.crc32c"] = "00000000"
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        got = "%08x" % crc32c(text.encode("utf-8") + buf)
        assert got == crc, f"ember.crc32c is {crc} but the header and data give {got}"
        del header["__metadata__"]["ember.crc32c"]
    metadata = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()), "metadata must be str->str"
    tensors, pos = {}, 0
    for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"]):
        begin, end = info["data_offsets"]
        assert begin == pos, f"{name}: data_offsets {begin} leave a gap or overlap (expected {pos})"
        dtype = DTYPES[info["dtype"]]
        shape = info["shape"]
        numel = 1
        for s in shape:
            numel *= s
        size = numel * torch.empty((), dtype=dtype).element_size()
        assert end - begin == size, f"{name}: {end - begin} bytes for shape {shape} {info['dtype']} ({size} expected)"
        if numel == 0:
            t = torch.empty(shape, dtype=dtype)
        else:
            t = torch.frombuffer(bytearray(buf[begin:end]), dtype=dtype).reshape(shape)
        tensors[name] = t
        pos = end
    assert pos == len(buf), f"{len(buf) - pos} trailing bytes not described by the header"
    return tensors, metadata


def same_bits(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    if a.numel() == 0:
        return True
    return tensor_bytes(a) == tensor_bytes(b)


def verify(path):
    tensors, metadata = read(path)
    want = expected()
    ok = True
    if set(tensors) != set(want):
        print(f"names differ: got {sorted(tensors)}, expected {sorted(want)}")
        ok = False
    for name in sorted(set(tensors) & set(want)):
        if not same_bits(tensors[name], want[name]):
            print(f"{name}: got {tensors[name]!r}, expected {want[name]!r}")
            ok = False
    if metadata != METADATA:
        print(f"metadata differs: got {metadata}, expected {METADATA}")
        ok = False
    print(f"{path}: {'OK' if ok else 'MISMATCH'} ({len(tensors)} tensors)")
    return ok


def main(argv):
    if len(argv) == 3 and argv[1] == "write":
        write(argv[2], expected(), METADATA)
        print(f"wrote {argv[2]} ({os.path.getsize(argv[2])} bytes)")
        return 0
    if len(argv) == 3 and argv[1] == "verify":
        return 0 if verify(argv[2]) else 1
    if len(argv) == 2 and argv[1] == "selftest":
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "t.safetensors")
            write(p, expected(), METADATA)
            return 0 if verify(p) else 1
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
