"""Demonstration datasets: a streaming-friendly writer and a `grain` random-access reader.

Format (why: ArrayRecord is grain's native random-access container, scales to 16k episodes
in a few hundred files, needs no TensorFlow, and a finished shard is immutable, which makes
resuming exact):

  DIR/
    shard-00000.array_record   one record per step (msgpack map, below), episodes contiguous
    shard-00000.npz            the same shard's `action` [N,7] and `proprio` [N,8] float32 arrays
                               (for statistics without decoding images)
    manifest.jsonl             one line per finished shard:
                               {"shard": name, "episodes": [seed...], "steps": N, "failed": [seed...]}
    dataset_statistics.json    OpenVLA layout: {name: {"action": {mean,std,max,min,q01,q99,mask},
                               "proprio": {...}, "num_transitions": N, "num_trajectories": M}}

A step record holds: "episode" (the episode's seed), "step", "image" (PNG bytes, RGB),
"instruction", "action" (7 float32, OpenVLA convention: metres, radians, gripper 1 = open),
"proprio" (8 float32: TCP xyz, TCP quaternion wxyz, gripper opening in metres), "reward",
"is_first", "is_last", "success" (at this step), "episode_success" (at the episode's last step).

A shard is written to a temporary name and renamed, then listed in the manifest; anything not
in the manifest is an interrupted shard and is discarded on resume, so episodes are never
duplicated or lost.
"""

from __future__ import annotations

import io
import json
import os

import msgpack
import numpy as np
from PIL import Image

MANIFEST = "manifest.jsonl"
STATISTICS = "dataset_statistics.json"
DATASET_NAME = "put_on_plate"
ACTION_DIM = 7
PROPRIO_DIM = 8
# OpenVLA leaves the gripper un-normalised (it is already in [0, 1]).
ACTION_MASK = [True] * 6 + [False]


def encode_png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def encode_step(step: dict) -> bytes:
    record = dict(step)
    record["image"] = encode_png(step["image"])
    record["action"] = np.asarray(step["action"], dtype=np.float32).tobytes()
    record["proprio"] = np.asarray(step["proprio"], dtype=np.float32).tobytes()
    return msgpack.packb(record, use_bin_type=True)


def decode_step(data: bytes, decode_image: bool = True) -> dict:
    record = msgpack.unpackb(data, raw=False)
    if decode_image:
        record["image"] = decode_png(record["image"])
    record["action"] = np.frombuffer(record["action"], dtype=np.float32).copy()
    record["proprio"] = np.frombuffer(record["proprio"], dtype=np.float32).copy()
    return record


def read_manifest(directory: str) -> list[dict]:
    path = os.path.join(directory, MANIFEST)
    if not os.path.exists(path):
        return []
    with open(path) as file:
        return [json.loads(line) for line in file if line.strip()]


class DemoWriter:
    """Appends episodes to shards of `episodes_per_shard`; resumable (see module docstring)."""

    def __init__(self, directory: str, episodes_per_shard: int = 32):
        from array_record.python.array_record_module import ArrayRecordWriter

        self._writer_class = ArrayRecordWriter
        self.directory = directory
        self.episodes_per_shard = episodes_per_shard
        os.makedirs(directory, exist_ok=True)
        manifest = read_manifest(directory)
        self.done_seeds = {seed for entry in manifest for seed in entry["episodes"] + entry.get("failed", [])}
        self.num_successful = sum(len(entry["episodes"]) for entry in manifest)
        self._shard_index = len(manifest)
        self._discard_unfinished(manifest)
        self._open = None

    def _discard_unfinished(self, manifest):
        finished = {entry["shard"] for entry in manifest}
        for name in os.listdir(self.directory):
            stem = name.split(".")[0]
            if name.startswith("shard-") and stem not in finished:
                os.remove(os.path.join(self.directory, name))

    def _start_shard(self):
        name = f"shard-{self._shard_index:05d}"
        path = os.path.join(self.directory, name + ".array_record.tmp")
        self._open = dict(
            name=name,
            path=path,
            writer=self._writer_class(path, "group_size:1"),
            episodes=[],
            failed=[],
            actions=[],
            proprios=[],
        )

    def add_episode(self, seed: int, records: list[bytes], actions, proprios, success: bool):
        """Record one episode of `encode_step` records; a failed one is only remembered (by seed)
        so that a resumed collection does not redo it."""
        if self._open is None:
            self._start_shard()
        shard = self._open
        if success:
            for record in records:
                shard["writer"].write(record)
            shard["actions"].extend(np.asarray(actions, dtype=np.float32).reshape(-1, ACTION_DIM))
            shard["proprios"].extend(np.asarray(proprios, dtype=np.float32).reshape(-1, PROPRIO_DIM))
            shard["episodes"].append(int(seed))
            self.num_successful += 1
        else:
            shard["failed"].append(int(seed))
        self.done_seeds.add(int(seed))
        if len(shard["episodes"]) >= self.episodes_per_shard:
            self.flush()

    def flush(self):
        """Finish the open shard: close, rename, then list it in the manifest (the commit point)."""
        shard = self._open
        if shard is None:
            return
        shard["writer"].close()
        final = os.path.join(self.directory, shard["name"] + ".array_record")
        os.replace(shard["path"], final)
        np.savez(
            os.path.join(self.directory, shard["name"] + ".npz"),
            action=np.asarray(shard["actions"], dtype=np.float32).reshape(-1, ACTION_DIM),
            proprio=np.asarray(shard["proprios"], dtype=np.float32).reshape(-1, PROPRIO_DIM),
        )
        entry = dict(
            shard=shard["name"],
            episodes=shard["episodes"],
            steps=len(shard["actions"]),
            failed=shard["failed"],
        )
        with open(os.path.join(self.directory, MANIFEST), "a") as file:
            file.write(json.dumps(entry) + "\n")
            file.flush()
            os.fsync(file.fileno())
        self._shard_index += 1
        self._open = None

    def close(self):
        self.flush()
        write_statistics(self.directory)


def _summary(values: np.ndarray, mask=None) -> dict:
    summary = {
        "mean": values.mean(0).tolist(),
        "std": values.std(0).tolist(),
        "max": values.max(0).tolist(),
        "min": values.min(0).tolist(),
        "q01": np.quantile(values, 0.01, axis=0).tolist(),
        "q99": np.quantile(values, 0.99, axis=0).tolist(),
    }
    if mask is not None:
        summary["mask"] = list(mask)
    return summary


def write_statistics(directory: str, name: str = DATASET_NAME) -> dict:
    """Write `dataset_statistics.json` in OpenVLA's layout from the finished shards."""
    manifest = read_manifest(directory)
    actions, proprios = [], []
    for entry in manifest:
        if entry["steps"]:
            arrays = np.load(os.path.join(directory, entry["shard"] + ".npz"))
            actions.append(arrays["action"])
            proprios.append(arrays["proprio"])
    if not actions:
        return {}
    action, proprio = np.concatenate(actions), np.concatenate(proprios)
    statistics = {
        name: {
            "action": _summary(action, ACTION_MASK),
            "proprio": _summary(proprio),
            "num_transitions": int(action.shape[0]),
            "num_trajectories": int(sum(len(entry["episodes"]) for entry in manifest)),
        }
    }
    with open(os.path.join(directory, STATISTICS), "w") as file:
        json.dump(statistics, file, indent=2)
    return statistics


class DemoSteps:
    """grain `RandomAccessDataSource` over every recorded step (len + getitem).

        source = DemoSteps("demos/train")
        loader = grain.DataLoader(data_source=source, sampler=grain.samplers.IndexSampler(...), ...)

    Items are dicts as in the module docstring with "image" decoded to uint8 [H, W, 3].
    `episode_seeds` lists episodes in file order, for splitting train/validation by episode.
    """

    def __init__(self, directory: str, decode_images: bool = True):
        import grain

        manifest = read_manifest(directory)
        if not manifest:
            raise FileNotFoundError(f"no finished shards in {directory} (missing {MANIFEST})")
        paths = [os.path.join(directory, e["shard"] + ".array_record") for e in manifest if e["steps"]]
        self._source = grain.sources.ArrayRecordDataSource(paths)
        self.decode_images = decode_images
        self.episode_seeds = [seed for entry in manifest for seed in entry["episodes"]]
        self.directory = directory

    def __len__(self) -> int:
        return len(self._source)

    def __getitem__(self, index: int) -> dict:
        return decode_step(self._source[index], decode_image=self.decode_images)

    def statistics(self) -> dict:
        with open(os.path.join(self.directory, STATISTICS)) as file:
            return json.load(file)

    def __repr__(self) -> str:
        return f"DemoSteps({self.directory!r}, steps={len(self)}, episodes={len(self.episode_seeds)})"
