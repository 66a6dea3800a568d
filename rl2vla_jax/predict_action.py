"""Predict one action with any rl2vla_jax checkpoint; prints one JSON line.

  python -m rl2vla_jax.predict_action --checkpoint=DIR --image=PNG --instruction=TEXT
      [--unnorm_key=K] [--temperature=0] [--seed=S]

--checkpoint: a converted checkpoint, an SFT or RL run directory (its latest step), its
`checkpoints/` folder or one step. Output: {"tokens": 7 vocab ids, "action": 7 un-normalised
values, "logprobs": per-token log-probs under the softmax over the 256 action ids at
temperature 1, "entropies": that distribution's entropy / ln 256}. Without norm stats the
action stays normalised in [-1, 1].
"""

import json

from absl import flags

from rl2vla_jax import cli
from rl2vla_jax.validation import ConfigError

flags.DEFINE_string("checkpoint", None, "Checkpoint, SFT/RL run directory or one step of it.", required=True)
flags.DEFINE_string("image", None, "Image file (any PIL-readable format).", required=True)
flags.DEFINE_string(
    "instruction", None, "Task instruction, e.g. 'put the carrot on the plate'.", required=True
)
flags.DEFINE_string("unnorm_key", None, "Dataset key of the norm stats (optional if only one).")
flags.DEFINE_float("temperature", 0.0, "Sampling temperature; 0 = greedy.", lower_bound=0.0)
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS


def main(argv):
    del argv  # cli.run has refused positional arguments
    image = cli.read_image(FLAGS.image)  # bad input is refused before any checkpoint is read
    if not FLAGS.instruction.strip():
        raise ConfigError(
            "--instruction is empty; pass the task, e.g. --instruction='put the carrot on the plate'"
        )
    import jax
    import numpy as np

    from rl2vla_jax import checkpoints
    from rl2vla_jax.data import norm_stats, prompt
    from rl2vla_jax.policy import preprocess, sampling
    from rl2vla_jax.policy.actions import ActionDecoder

    with cli.reading(f"--checkpoint={FLAGS.checkpoint} cannot be read"):
        params, cfg, assets = checkpoints.load_policy(FLAGS.checkpoint)
    stats = None
    if assets["norm_stats"] or FLAGS.unnorm_key:
        try:  # before anything compiles
            stats = norm_stats.select_stats(assets["norm_stats"] or {}, FLAGS.unnorm_key)
        except ValueError as err:
            raise ConfigError(str(err)) from None
    tokenizer = prompt.load_tokenizer(assets["tokenizer"] or prompt.tiny_tokenizer())
    pixels = preprocess.preprocess_images([image], cfg.image_size)
    ids, mask = prompt.encode_prompts(tokenizer, [FLAGS.instruction], vocab_size=cfg.llm.vocab_size)
    out = sampling.sample_actions(
        params, cfg, pixels, ids, mask, jax.random.key(FLAGS.seed), FLAGS.temperature
    )
    tokens = np.asarray(out["tokens"][0])
    log_p = np.asarray(jax.nn.log_softmax(out["logits"][0], axis=-1))
    actions = ActionDecoder(cfg, None).normalised(tokens)
    if stats is not None:
        actions = norm_stats.unnormalize(actions, stats)
    result = {
        "tokens": (tokens + cfg.action_token_begin).tolist(),
        "action": [float(a) for a in actions],
        "logprobs": [float(x) for x in log_p[np.arange(len(tokens)), tokens]],
        "entropies": [float(x) for x in np.asarray(out["entropies"][0])],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    cli.run(main)
