"""Evaluation suites: every setting with its env id, options, split and category.

Two suites:
  "ours"   the put-on-plate family built here from shipped assets (Panda, primitive shapes);
           the train split plus RL4VLA's 16 evaluation settings with the same meanings.
  "rl4vla" RL4VLA's own `PutOnPlateInScene25*` ids (WidowX, Bridge scans). They live in the
           RL4VLA ManiSkill fork and need its downloaded assets; the ids and object sets below
           are the 16 of RL4VLA's README "Task definition" list (and its training env), mapped
           onto our setting names. Using them without the fork raises one clear error
           (`Rl4vlaUnavailable`); envs/rl4vla.py drives them as RL4VLA's wrapper does.
"""

from __future__ import annotations

import dataclasses

from rl2vla_jax.envs.settings import SETTINGS

CATEGORIES = ("ID", "visual", "semantic", "execution")


@dataclasses.dataclass(frozen=True)
class SuiteEntry:
    suite: str
    setting: str
    env_id: str
    split: str
    category: str
    options: dict
    description: str


def _ours() -> dict[str, SuiteEntry]:
    entries = {}
    for spec in SETTINGS.values():
        options = {
            field.name: getattr(spec, field.name)
            for field in dataclasses.fields(spec)
            if field.name not in ("name", "category", "split", "description")
        }
        entries[spec.name] = SuiteEntry(
            "ours", spec.name, spec.env_id, spec.split, spec.category, options, spec.description
        )
    return entries


# setting -> (RL4VLA env id, the reset options RL4VLA passes). Same setting names as ours.
# gen-robot/RL4VLA README, "Task definition": "id" is Carrot-v1 on the train object set
# ("similar to training setting"), "object_moved" is PositionChangeTo-v1; "train" is the env
# its RL trains on (README "RL": PutOnPlateInScene25Main-v3, obj_set="train").
_RL4VLA_IDS = {
    "train": ("PutOnPlateInScene25Main-v3", {"obj_set": "train"}),
    "id": ("PutOnPlateInScene25Carrot-v1", {"obj_set": "train"}),
    "unseen_table": ("PutOnPlateInScene25VisionImage-v1", {"obj_set": "test"}),
    "dynamic_texture_weak": ("PutOnPlateInScene25VisionTexture03-v1", {"obj_set": "test"}),
    "dynamic_texture_strong": ("PutOnPlateInScene25VisionTexture05-v1", {"obj_set": "test"}),
    "image_noise_weak": ("PutOnPlateInScene25VisionWhole03-v1", {"obj_set": "test"}),
    "image_noise_strong": ("PutOnPlateInScene25VisionWhole05-v1", {"obj_set": "test"}),
    "unseen_objects": ("PutOnPlateInScene25Carrot-v1", {"obj_set": "test"}),
    "unseen_receptacles": ("PutOnPlateInScene25Plate-v1", {"obj_set": "test"}),
    "unseen_instructions": ("PutOnPlateInScene25Instruct-v1", {"obj_set": "test"}),
    "multi_object_seen_distractor": ("PutOnPlateInScene25MultiCarrot-v1", {"obj_set": "train"}),
    "multi_object_unseen": ("PutOnPlateInScene25MultiCarrot-v1", {"obj_set": "test"}),
    "distractor_receptacle": ("PutOnPlateInScene25MultiPlate-v1", {"obj_set": "train"}),
    "multi_receptacle": ("PutOnPlateInScene25MultiPlate-v1", {"obj_set": "test"}),
    "unseen_positions": ("PutOnPlateInScene25Position-v1", {"obj_set": "test"}),
    "unseen_robot_pose": ("PutOnPlateInScene25EEPose-v1", {"obj_set": "test"}),
    "object_moved": ("PutOnPlateInScene25PositionChangeTo-v1", {"obj_set": "test"}),
}


def _rl4vla() -> dict[str, SuiteEntry]:
    return {
        name: SuiteEntry(
            "rl4vla",
            name,
            env_id,
            SETTINGS[name].split,
            SETTINGS[name].category,
            options,
            SETTINGS[name].description,
        )
        for name, (env_id, options) in _RL4VLA_IDS.items()
    }


SUITES: dict[str, dict[str, SuiteEntry]] = {"ours": _ours(), "rl4vla": _rl4vla()}


class Rl4vlaUnavailable(RuntimeError):
    pass


def rl4vla_available() -> bool:
    import mani_skill.envs  # noqa: F401  (registers every task the installed ManiSkill ships)
    from mani_skill.utils.registration import REGISTERED_ENVS

    return "PutOnPlateInScene25Main-v3" in REGISTERED_ENVS


def get_setting(suite: str, setting: str) -> SuiteEntry:
    if suite not in SUITES:
        raise KeyError(f"unknown suite {suite!r}; suites: {sorted(SUITES)}")
    if setting not in SUITES[suite]:
        raise KeyError(f"unknown setting {setting!r} of suite {suite!r}; settings: {list(SUITES[suite])}")
    if suite == "rl4vla" and not rl4vla_available():
        raise Rl4vlaUnavailable(
            "The 'rl4vla' suite needs RL4VLA's ManiSkill fork (PutOnPlateInScene25* envs, WidowX robot) and its "
            "downloaded Bridge assets, which are not installed. Install the fork "
            "(https://github.com/gen-robot/RL4VLA or RLinf's ManiSkill) with its assets, or use suite='ours'."
        )
    return SUITES[suite][setting]


def list_settings(
    suite: str = "ours", split: str | None = None, category: str | None = None
) -> list[SuiteEntry]:
    return [
        entry
        for entry in SUITES[suite].values()
        if (split is None or entry.split == split) and (category is None or entry.category == category)
    ]
