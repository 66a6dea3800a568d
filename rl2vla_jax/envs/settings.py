"""The train split and the 16 evaluation settings of the put-on-plate family (RL4VLA's suite).

A setting is plain data: which pool each episode draws from (train or unseen), and which
perturbation it applies. Pure Python, no simulator import.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class SettingSpec:
    name: str
    category: str  # "ID", "visual", "semantic" or "execution"
    split: str  # "train" (demonstrations and RL) or "test" (evaluation only)
    description: str
    objects: str = "train"  # pool of the object named in the instruction
    distractor_object: str | None = None  # pool of a second, unnamed object
    receptacles: str = "train"
    distractor_receptacle: str | None = None
    tables: str = "train"
    instructions: str = "train"
    positions: str = "train"
    robot_init: str = "train"
    move_object_at_step: int | None = None  # teleport the object >= 15 cm at this step
    image_perturbation: str | None = None  # "dynamic_texture" or "image_noise"
    perturbation_weight: float = 0.0

    @property
    def env_id(self) -> str:
        camel = "".join(part.capitalize() for part in self.name.split("_"))
        return f"PutOnPlate{camel}-v1"


MOVE_DISTANCE_MIN = 0.15

SETTINGS: dict[str, SettingSpec] = {
    spec.name: spec
    for spec in (
        SettingSpec("train", "ID", "train", "16 objects, 1 plate, 16 table looks, 1 instruction template"),
        SettingSpec("id", "ID", "test", "the train distribution, for evaluation (use unseen seeds)"),
        # Vision.
        SettingSpec("unseen_table", "visual", "test", "5 unseen table looks", tables="unseen"),
        SettingSpec(
            "dynamic_texture_weak",
            "visual",
            "test",
            "a texture redrawn every frame, blended at 0.3 over robot and object pixels",
            image_perturbation="dynamic_texture",
            perturbation_weight=0.3,
        ),
        SettingSpec(
            "dynamic_texture_strong",
            "visual",
            "test",
            "a texture redrawn every frame, blended at 0.5 over robot and object pixels",
            image_perturbation="dynamic_texture",
            perturbation_weight=0.5,
        ),
        SettingSpec(
            "image_noise_weak",
            "visual",
            "test",
            "uniform noise redrawn every frame, blended at 0.3 over the whole image",
            image_perturbation="image_noise",
            perturbation_weight=0.3,
        ),
        SettingSpec(
            "image_noise_strong",
            "visual",
            "test",
            "uniform noise redrawn every frame, blended at 0.5 over the whole image",
            image_perturbation="image_noise",
            perturbation_weight=0.5,
        ),
        # Semantic.
        SettingSpec("unseen_objects", "semantic", "test", "8 unseen objects", objects="unseen"),
        SettingSpec(
            "unseen_receptacles", "semantic", "test", "6 unseen plates, trays and bowls", receptacles="unseen"
        ),
        SettingSpec(
            "unseen_instructions",
            "semantic",
            "test",
            "16 unseen instruction templates",
            instructions="unseen",
        ),
        SettingSpec(
            "multi_object_seen_distractor",
            "semantic",
            "test",
            "a second train object on the table; the instruction names one",
            distractor_object="train",
        ),
        SettingSpec(
            "multi_object_unseen",
            "semantic",
            "test",
            "two unseen objects on the table; the instruction names one",
            objects="unseen",
            distractor_object="unseen",
        ),
        SettingSpec(
            "distractor_receptacle",
            "semantic",
            "test",
            "the plate plus an unseen receptacle that is not the goal",
            distractor_receptacle="unseen",
        ),
        SettingSpec(
            "multi_receptacle",
            "semantic",
            "test",
            "two unseen receptacles; the instruction names one",
            receptacles="unseen",
            distractor_receptacle="unseen",
        ),
        # Execution.
        SettingSpec(
            "unseen_positions",
            "execution",
            "test",
            "object on an outer ring, with unseen yaws",
            positions="unseen",
        ),
        SettingSpec(
            "unseen_robot_pose",
            "execution",
            "test",
            "robot starts from joint offsets of 0.1-0.2 rad",
            robot_init="unseen",
        ),
        SettingSpec(
            "object_moved",
            "execution",
            "test",
            "the object is moved >= 15 cm at step 5",
            move_object_at_step=5,
        ),
    )
}
