"""Which parameters train: a params tree split by regexes over '/'-joined paths into a
trainable and a frozen flat dict, so gradients and optimizer moments exist only for the first."""

import re
from collections.abc import Sequence
from typing import Any

import flax
import jax

Params = Any
FlatParams = dict[str, jax.Array]  # '/'-joined path -> array


def flatten(params: Params) -> FlatParams:
    return {"/".join(path): leaf for path, leaf in flax.traverse_util.flatten_dict(params).items()}


def unflatten(flat: FlatParams) -> Params:
    return flax.traverse_util.unflatten_dict({tuple(k.split("/")): v for k, v in flat.items()})


def split_trainable(params: Params, patterns: Sequence[str]) -> tuple[FlatParams, FlatParams]:
    """(trainable, frozen) by regexes over '/'-joined paths (config.trainable)."""
    compiled = [re.compile(p) for p in patterns]
    flat = flatten(params)
    trainable = {k: v for k, v in flat.items() if any(c.search(k) for c in compiled)}
    if not trainable:
        raise ValueError(f"no parameter matches the trainable patterns {list(patterns)}")
    frozen = {k: v for k, v in flat.items() if k not in trainable}
    return trainable, frozen


def merge(trainable: FlatParams, frozen: FlatParams) -> Params:
    return unflatten({**frozen, **trainable})
