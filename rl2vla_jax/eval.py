"""Evaluate a policy on an OOD suite: python -m rl2vla_jax.eval --config=configs/eval.py --checkpoint=DIR
[--suite=ours|rl4vla] [--settings=a,b] [--seeds=0,1,2] [--episodes=N] [--compare=DIR] [--out=DIR].

--checkpoint: a model checkpoint (SFT / converter output), an SFT or RL run directory (latest
step), or `random` (the untrained policy). --compare: another checkpoint (evaluated into
OUT/compare) or a results folder. Rerunning the same command resumes an interrupted evaluation.
"""

import dataclasses
import os

from absl import flags
from ml_collections import config_flags

from rl2vla_jax import cli, config_base
from rl2vla_jax.validation import CAMERAS, LAYOUTS, ConfigError, check_pipeline_groups

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "Evaluation config file[:presets].", lock_config=True
)
_CHECKPOINT = flags.DEFINE_string("checkpoint", None, "Checkpoint or run directory, or 'random'.")
_SUITE = flags.DEFINE_string("suite", None, "Suite: ours | rl4vla (default config.env.suite).")
_SETTINGS = flags.DEFINE_string("settings", None, "Comma-separated settings (default: all of the suite).")
_SEEDS = flags.DEFINE_string("seeds", None, "Comma-separated evaluation seeds (default config.eval.seeds).")
_EPISODES = flags.DEFINE_integer(
    "episodes", None, "Episodes per setting and seed (default config.eval.episodes).", lower_bound=1
)
_COMPARE = flags.DEFINE_string("compare", None, "A second checkpoint, or a results folder, to compare with.")
_OUT = flags.DEFINE_string("out", None, "Results folder (default results/<checkpoint>_<suite>).")
# Default: what the checkpoint was trained under (its assets), else the config's env section.
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Camera resolution.", lower_bound=16)
_HORIZON = flags.DEFINE_integer(
    "max_episode_steps", None, "Episode length (success at its last step).", lower_bound=1
)
_CAMERA = flags.DEFINE_enum("camera", None, CAMERAS, "Camera framing.")
_LAYOUT = flags.DEFINE_enum("layout", None, LAYOUTS, "Object and plate spread of the ID settings; narrow_all: of every setting.")
flags.mark_flags_as_required(["config", "checkpoint"])


def main(argv):
    del argv  # cli.run has refused positional arguments
    config = _CONFIG.value
    if "seeds" not in config.get("eval", {}):  # an RL config has eval.temperature only
        raise ConfigError("the config has no `eval` section (seeds, episodes); use configs/eval.py")
    config_base.validate_common(config)
    from rl2vla_jax.evaluation import selection  # imports the simulator: after the cheap checks

    suite = _SUITE.value or config.env.suite
    # --suite may differ from config.env.suite, which validate_common checked against
    check_pipeline_groups(config.env.pipeline_groups, config.env.num_envs, config.env.backend, suite)
    entries = selection.select_settings(suite, _SETTINGS.value)
    seeds = selection.parse_seeds(_SEEDS.value, config.eval.seeds)
    episodes = _EPISODES.value or config.eval.episodes
    from rl2vla_jax.evaluation import report, runner  # JAX: only once the arguments are valid

    if not 1 <= episodes <= runner.MAX_EPISODES:
        raise ConfigError(f"episodes={episodes} must be between 1 and {runner.MAX_EPISODES} per setting and seed")

    checkpoint = runner.resolve_checkpoint(_CHECKPOINT.value)
    compare = _COMPARE.value
    if compare and not selection.is_results_folder(compare):
        compare = runner.resolve_checkpoint(compare)
    out = _OUT.value or selection.default_out(checkpoint, suite)
    overrides = dict(
        image_size=_IMAGE_SIZE.value,
        max_episode_steps=_HORIZON.value,
        camera=_CAMERA.value,
        layout=_LAYOUT.value,
    )
    env = runner.conditions(config, checkpoint, overrides)
    options = runner.Options(
        checkpoint, suite, seeds, episodes, float(config.eval.temperature),
        int(env["max_episode_steps"]), int(env["image_size"]), env["camera"], env["layout"],
    )  # fmt: skip
    print(f"[eval] env conditions: {env}", flush=True)
    print(f"[eval] {checkpoint} on {len(entries)} setting(s) of {suite!r} -> {out}", flush=True)
    results = runner.evaluate(config, checkpoint, entries, options, out)
    other = label = None
    if compare:
        names = [e.setting for e in entries]
        if selection.is_results_folder(compare):
            other, label = selection.load_results(compare, names), compare
        else:
            other_options = dataclasses.replace(options, checkpoint=compare)
            other = runner.evaluate(config, compare, entries, other_options, os.path.join(out, "compare"))
            label = compare
    text = report.write_report(out, results, checkpoint, other, label)
    print(
        f"\n{text}\n[eval] results folder: {out} (summary.md, summary.csv, per_seed.csv, summary.png, videos/)"
    )


if __name__ == "__main__":
    cli.run(main)
