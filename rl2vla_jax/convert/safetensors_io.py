"""Read safetensors shards one tensor at a time, without torch.

The format is: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
data_offsets: [begin, end]}} and the raw little-endian data. Tensors are read through a numpy
memmap, so only the tensor being converted is in memory; bfloat16 comes back as
`ml_dtypes.bfloat16` (numpy has no bf16, which is why the library's numpy API is not used).
"""

from __future__ import annotations

import json
import os
import struct

import ml_dtypes
import numpy as np

DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "BF16": ml_dtypes.bfloat16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "BOOL": np.bool_,
}


class SafetensorsError(ValueError):
    pass


class SafetensorsFile:
    """One shard: `keys()`, `shape(key)`, `get(key)` (a numpy array, copied out of the memmap)."""

    def __init__(self, path: str):
        self.path = path
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) < 8:
                raise SafetensorsError(f"truncated shard {path}: {size} bytes, no header")
            (header_len,) = struct.unpack("<Q", raw)
            if 8 + header_len > size:
                raise SafetensorsError(
                    f"truncated shard {path}: header needs {8 + header_len} bytes, file has {size}"
                )
            header = json.loads(f.read(header_len))
        header.pop("__metadata__", None)
        self.header = header
        self.data_start = 8 + header_len
        needed = self.data_start + max((v["data_offsets"][1] for v in header.values()), default=0)
        if needed > size:
            raise SafetensorsError(f"truncated shard {path}: tensors need {needed} bytes, file has {size}")
        self._memmap = np.memmap(path, dtype=np.uint8, mode="r") if size else None

    def keys(self) -> list[str]:
        return list(self.header)

    def shape(self, key: str) -> tuple[int, ...]:
        return tuple(self.header[key]["shape"])

    def dtype(self, key: str) -> str:
        return self.header[key]["dtype"]

    def get(self, key: str) -> np.ndarray:
        info = self.header[key]
        begin, end = info["data_offsets"]
        raw = self._memmap[self.data_start + begin : self.data_start + end]
        return np.array(raw.view(DTYPES[info["dtype"]]).reshape(info["shape"]))


def shard_index(model_dir: str) -> dict[str, str]:
    """{tensor name: shard file path}, from model.safetensors.index.json (or a single file)."""
    index_path = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        with open(index_path) as f:
            weight_map = json.load(f)["weight_map"]
        return {k: os.path.join(model_dir, v) for k, v in weight_map.items()}
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return dict.fromkeys(SafetensorsFile(single).keys(), single)
    raise SafetensorsError(f"no model.safetensors.index.json or model.safetensors in {model_dir}")


def save_numpy(tensors: dict[str, np.ndarray], path: str, metadata: dict[str, str] | None = None) -> None:
    """Write a safetensors file from numpy arrays (bfloat16 included)."""
    names = {np.dtype(v): k for k, v in DTYPES.items()}
    header, offset, blobs = {}, 0, []
    for key, value in tensors.items():
        value = np.ascontiguousarray(value)
        blob = value.tobytes()
        header[key] = {
            "dtype": names[value.dtype],
            "shape": list(value.shape),
            "data_offsets": [offset, offset + len(blob)],
        }
        offset += len(blob)
        blobs.append(blob)
    if metadata:
        header["__metadata__"] = metadata
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for blob in blobs:
            f.write(blob)
