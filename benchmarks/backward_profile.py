"""Where the JAX LoRA train step's time goes, op by op (the profile behind docs/performance.md).

  ./run.sh python benchmarks/backward_profile.py [--preset=px64|cpu] [--batch=32] [--mode=grad|forward]
      [--scan_unroll=1] [--top=30]

Traces a few calls of the jitted step (the same loss as model_speed.py, random weights, LoRA B
non-zero) with jax.profiler, maps each executed op (thunk) to its HLO instruction in
`compile().as_text()` and prints the op time summed by op kind, by model part (forward /
backward = `transpose(jvp(...))`), and the slowest ops with their shapes, plus the step's
temp-buffer size and minor page faults per call.
"""

import argparse
import collections
import glob
import gzip
import json
import os
import re
import resource
import sys
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_speed import PRESETS, PROMPT_LEN  # noqa: E402

from rl2vla_jax.convert import openvla_hf  # noqa: E402
from rl2vla_jax.convert import torch_reference as ref  # noqa: E402
from rl2vla_jax.models import config as config_lib  # noqa: E402
from rl2vla_jax.models import lora as lora_lib  # noqa: E402
from rl2vla_jax.models.init import init_params  # noqa: E402
from rl2vla_jax.policy.sampling import action_logits_and_hidden  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="px64", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--mode", default="grad", choices=("grad", "forward"))
    parser.add_argument("--scan_unroll", type=int, default=1)
    parser.add_argument("--calls", type=int, default=3)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    cfg = openvla_hf.model_config_from_hf(ref.hf_config(**PRESETS[args.preset]), "float32")
    targets = tuple(
        t for t in config_lib.DEFAULT_LORA_TARGETS if "patch_embed" not in t and "lm_head" not in t
    )
    cfg = cfg.replace(lora=config_lib.LoraConfig(32, 16.0, targets), scan_unroll=args.scan_unroll)
    params = init_params(cfg, jax.random.key(0))
    params = jax.tree_util.tree_map_with_path(
        lambda p, x: (
            jax.random.normal(jax.random.key(1), x.shape) * 0.02 if p[-1].key == lora_lib.LORA_B else x
        ),
        params,
    )
    rng = np.random.default_rng(0)
    b, prompt_len = args.batch, PROMPT_LEN[args.preset]
    pixels = rng.normal(size=(b, cfg.image_size, cfg.image_size, 6)).astype(np.float32)
    ids = np.concatenate([np.ones((b, 1)), rng.integers(3, 300, size=(b, prompt_len - 1))], 1).astype(
        np.int32
    )
    mask, actions = np.ones_like(ids, bool), rng.integers(0, 256, size=(b, 7)).astype(np.int32)
    is_lora = lora_lib.lora_mask(params)
    trainable = jax.tree_util.tree_map(lambda x, m: x if m else None, params, is_lora)
    frozen = jax.tree_util.tree_map(lambda x, m: None if m else x, params, is_lora)

    def loss(trainable, frozen):
        full = jax.tree_util.tree_map(
            lambda a, f: f if a is None else a, trainable, frozen, is_leaf=lambda x: x is None
        )
        logits, _ = action_logits_and_hidden(full, cfg, pixels, ids, mask, actions)
        return -jnp.take_along_axis(jax.nn.log_softmax(logits, -1), actions[..., None], -1).mean()

    step = jax.jit(jax.value_and_grad(loss) if args.mode == "grad" else loss)
    compiled = step.lower(trainable, frozen).compile()
    ops = {}  # HLO instruction name -> (shape, op_name metadata)
    for line in compiled.as_text().splitlines():
        m = re.match(r"\s*(?:ROOT )?%(\S+) = (\S+) ", line)
        if m:
            op_name = re.search(r'op_name="([^"]*)"', line)
            ops[m.group(1)] = (m.group(2), op_name.group(1) if op_name else "")
    run = lambda: jax.block_until_ready(step(trainable, frozen))
    run(), run()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    run()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            for _ in range(args.calls):
                run()
        events = json.load(gzip.open(glob.glob(f"{tmp}/**/perfetto_trace.json.gz", recursive=True)[0]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    per_op = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e["name"] in ops:
            per_op[e["name"]] += e.get("dur", 0) / args.calls / 1e3  # ms per call
    by_kind, by_part = collections.Counter(), collections.Counter()
    for name, ms in per_op.items():
        by_kind[re.sub(r"[._]\d+$", "", name)] += ms
        op_name = ops[name][1]
        part = re.sub(r"/closed_call|/while/body|/checkpoint|/remat|jit\(\w+\)/", "", op_name)
        by_part[
            ("backward " if "transpose(" in op_name else "forward ") + (part[:90] or "(no metadata)")
        ] += ms
    memory = compiled.memory_analysis()
    print(f"{args.preset} batch {b} {args.mode} scan_unroll={args.scan_unroll}: op time {sum(per_op.values()):.1f} ms/call, "
          f"temp buffer {memory.temp_size_in_bytes / 2**20:.0f} MiB, minor page faults {faults} per call, "
          f"load {os.getloadavg()[0]:.2f}")  # fmt: skip
    for title, counter in (("by op kind", by_kind), ("by model part", by_part)):
        print(f"\n{title}:")
        for key, ms in counter.most_common(args.top):
            print(f"  {ms:9.2f} ms  {key}")
    print("\nslowest ops:")
    for name, ms in per_op.most_common(args.top):
        shape, op_name = ops[name]
        print(f"  {ms:9.2f} ms  {name:40s} {shape:30s} {op_name[-90:]}")


if __name__ == "__main__":
    main()
