"""exp35: what the SFT input pipeline costs per batch, alone (wall and CPU time), on exp33's demos."""

import json
import os
import time

from configs import sft as sft_config
from rl2vla_jax.data.norm_stats import select_stats
from rl2vla_jax.data.prompt import tiny_tokenizer
from rl2vla_jax.policy import loading
from rl2vla_jax.sft import data as sft_data

DEMOS = "/tmp/exp33/a/demos"
config = sft_config.get_config("experiment")
model_cfg = loading.model_config(config, None)
with open(os.path.join(DEMOS, "dataset_statistics.json")) as f:
    stats = select_stats(json.load(f), None)
split = sft_data.split_episodes(DEMOS, config.val_fraction, config.seed)
to_example = sft_data.StepToExample(
    tiny_tokenizer(),
    stats,
    model_cfg.action_token_end,
    model_cfg.image_size,
    config.model.max_prompt_tokens,
    model_cfg.llm.vocab_size,
)
for threads in (4, 1):
    stream = sft_data.train_stream(DEMOS, split.train_indices, to_example, 16, 0, num_threads=threads)
    next(stream)
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(300):
        next(stream)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"threads {threads}: {wall / 300 * 1000:.1f} ms wall, {cpu / 300 * 1000:.1f} ms CPU per batch of 16"
    )
