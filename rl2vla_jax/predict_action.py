"""Predict one action with a converted OpenVLA checkpoint; prints one JSON line.

  python -m rl2vla_jax.predict_action --checkpoint=DIR --image=PNG --instruction=TEXT
      [--unnorm_key=K] [--temperature=0] [--seed=S]

Output: {"tokens": 7 vocab ids, "action": 7 un-normalised values, "logprobs": per-token log-probs
under the softmax over the 256 action ids at temperature 1, "entropies": that distribution's
entropy / ln 256}. Without norm stats the action stays normalised in [-1, 1].
"""

import json

from absl import app, flags

flags.DEFINE_string(
    "checkpoint", None, "rl2vla_jax checkpoint folder (convert_openvla output).", required=True
)
flags.DEFINE_string("image", None, "Image file (any PIL-readable format).", required=True)
flags.DEFINE_string(
    "instruction", None, "Task instruction, e.g. 'put the carrot on the plate'.", required=True
)
flags.DEFINE_string("unnorm_key", None, "Dataset key of the norm stats (optional if only one).")
flags.DEFINE_float("temperature", 0.0, "Sampling temperature; 0 = greedy.")
flags.DEFINE_integer("seed", 0, "Sampling seed.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import jax
    import numpy as np
    from PIL import Image

    from rl2vla_jax.convert.checkpoint import load_checkpoint
    from rl2vla_jax.data import action_tokenizer, image, norm_stats, prompt
    from rl2vla_jax.rl import policy

    params, cfg, assets = load_checkpoint(FLAGS.checkpoint)
    tokenizer = prompt.load_tokenizer(assets["tokenizer"])
    pixels = image.preprocess_images([Image.open(FLAGS.image)], cfg.image_size)
    ids, mask = prompt.encode_prompts(tokenizer, [FLAGS.instruction])
    out = policy.sample_actions(params, cfg, pixels, ids, mask, jax.random.key(FLAGS.seed), FLAGS.temperature)
    tokens = np.asarray(out["tokens"][0])
    log_p = np.asarray(jax.nn.log_softmax(out["logits"][0], axis=-1))
    actions = action_tokenizer.ActionTokenizer.from_model_config(cfg).decode_bins(tokens)
    if assets["norm_stats"] or FLAGS.unnorm_key:
        actions = norm_stats.unnormalize(
            actions, norm_stats.select_stats(assets["norm_stats"], FLAGS.unnorm_key)
        )
    result = {
        "tokens": (tokens + cfg.action_token_begin).tolist(),
        "action": [float(a) for a in actions],
        "logprobs": [float(x) for x in log_p[np.arange(len(tokens)), tokens]],
        "entropies": [float(x) for x in np.asarray(out["entropies"][0])],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
