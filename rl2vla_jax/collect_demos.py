"""Record scripted-expert demonstrations of the put-on-plate task.

    python -m rl2vla_jax.collect_demos --config=configs/sft.py --num_episodes=N --out=DIR

Reads from the config (when given): env.setting, env.image_size, env.camera, env.layout,
collect.num_episodes, collect.num_workers, collect.hold_steps, collect.action_noise,
collect.expert_step, data_dir,
seed. Flags given on the command line win over the config.
Writes ArrayRecord shards + dataset_statistics.json (format: rl2vla_jax/data/demos.py) and
resumes an interrupted collection in the same --out.
"""

from absl import flags
from ml_collections import config_flags

from rl2vla_jax import cli
from rl2vla_jax.validation import CAMERAS, LAYOUTS, ConfigError, check_choice

_CONFIG = config_flags.DEFINE_config_file("config", None, "ml_collections config file (e.g. configs/sft.py)")
_NUM_EPISODES = flags.DEFINE_integer("num_episodes", None, "successful episodes to end with (default 50)")
_OUT = flags.DEFINE_string("out", None, "output directory (default: config.data_dir or demos/train)")
_SETTING = flags.DEFINE_string("setting", None, "setting of the 'ours' suite (default: train)")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "camera resolution (default 224)")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", None, "simulator processes (default 1)")
_SEED = flags.DEFINE_integer("seed", None, "first episode seed (default 0)")
_MAX_STEPS = flags.DEFINE_integer("max_steps", 40, "step limit per demonstration (the expert needs ~15)")
_EPISODES_PER_SHARD = flags.DEFINE_integer("episodes_per_shard", 32, "episodes per ArrayRecord shard")


def _pick(flag_value, config, path: str, default):
    """The flag if given, else the config field at dotted `path` if present, else the default."""
    if flag_value is not None:
        return flag_value
    node = config
    for part in path.split("."):
        if node is None or part not in node:
            return default
        node = node[part]
    return node


def main(argv):
    del argv  # cli.run has refused positional arguments
    config = _CONFIG.value
    options = dict(
        out=_pick(_OUT.value, config, "data_dir", "demos/train"),
        num_episodes=_pick(_NUM_EPISODES.value, config, "collect.num_episodes", 50),
        setting=_pick(_SETTING.value, config, "env.setting", "train"),
        image_size=_pick(_IMAGE_SIZE.value, config, "env.image_size", 224),
        max_steps=_MAX_STEPS.value,
        num_workers=_pick(_NUM_WORKERS.value, config, "collect.num_workers", 1),
        seed=_pick(_SEED.value, config, "seed", 0),
        episodes_per_shard=_EPISODES_PER_SHARD.value,
        hold_steps=_pick(None, config, "collect.hold_steps", 2),
        action_noise=float(_pick(None, config, "collect.action_noise", 0.0)),
        expert_step=float(_pick(None, config, "collect.expert_step", 0.1)),
        env_options={
            "camera": _pick(None, config, "env.camera", "wide"),
            "layout": _pick(None, config, "env.layout", "full"),
        },
    )
    check_choice("env.camera", options["env_options"]["camera"], CAMERAS)
    check_choice("env.layout", options["env_options"]["layout"], LAYOUTS)
    if int(options["hold_steps"]) < 0 or options["action_noise"] < 0:
        raise ConfigError(
            f"collect.hold_steps={options['hold_steps']} and collect.action_noise={options['action_noise']} "
            "must be >= 0"
        )
    for key in ("num_episodes", "image_size", "max_steps", "num_workers", "episodes_per_shard"):
        if int(options[key]) < 1:  # config values too, not only the flags' lower bounds
            raise ConfigError(f"{key}={options[key]} must be >= 1")
    # Checked before the writer creates --out (the envs import registers the settings).
    from rl2vla_jax.envs.actions import MAX_TRANSLATION
    from rl2vla_jax.envs.demo_collection import collect
    from rl2vla_jax.envs.settings import SETTINGS

    check_choice("setting", options["setting"], SETTINGS)
    if not 0 < options["expert_step"] <= MAX_TRANSLATION:
        raise ConfigError(
            f"collect.expert_step={options['expert_step']} must be in (0, {MAX_TRANSLATION}] metres"
        )
    print(f"demonstrations: {collect(**options)}")


if __name__ == "__main__":
    cli.run(main)
