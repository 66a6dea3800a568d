"""What the put-on-plate family is made of: objects, receptacles, table looks, instructions.

Pure data, no simulator import, so suites and tests can reason about splits cheaply. Every
"unseen" pool is disjoint from its "train" pool by name, and by look (shape/size/colour); the
split tests check that.

Everything is built from the primitives that ship with SAPIEN (boxes, capsules, cylinders),
because the RL4VLA scans (carrots, plates, Bridge tables) need a download that is not available
here. Sizes are in metres; every object fits the Panda gripper's 8 cm opening across its
narrow side.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class ObjectKind:
    """A graspable object. `shape` is "box" (half_size = x, y, z half extents), "capsule"
    (radius, half_length along x, lies on the table), "cylinder" (radius, half_length along x,
    lies on the table) or "upright_cylinder" (the same, standing on its end)."""

    name: str
    shape: str
    half_size: tuple[float, ...]
    rgba: tuple[float, float, float, float]

    @property
    def resting_half_height(self) -> float:
        """Height of the centre above the table when the object rests on it."""
        if self.shape == "box":
            return self.half_size[2]
        if self.shape in ("capsule", "cylinder"):
            return self.half_size[0]
        if self.shape == "upright_cylinder":
            return self.half_size[1]
        raise ValueError(self.shape)

    @property
    def long_axis_is_x(self) -> bool:
        """Whether the gripper should close across the object's local y axis (True) or x axis."""
        if self.shape in ("capsule", "cylinder"):
            return True
        if self.shape == "box":
            return self.half_size[0] >= self.half_size[1]
        return True  # upright cylinders are round in plan view


def _rgb(r, g, b):
    return (r, g, b, 1.0)


TRAIN_OBJECTS: tuple[ObjectKind, ...] = (
    ObjectKind("carrot", "capsule", (0.018, 0.045), _rgb(1.0, 0.45, 0.05)),
    ObjectKind("eggplant", "capsule", (0.026, 0.040), _rgb(0.35, 0.08, 0.45)),
    ObjectKind("cube", "box", (0.022, 0.022, 0.022), _rgb(0.85, 0.1, 0.1)),
    ObjectKind("banana", "capsule", (0.016, 0.055), _rgb(0.98, 0.85, 0.15)),
    ObjectKind("cucumber", "capsule", (0.020, 0.060), _rgb(0.1, 0.4, 0.1)),
    ObjectKind("lemon", "capsule", (0.024, 0.012), _rgb(1.0, 0.95, 0.3)),
    ObjectKind("sponge", "box", (0.035, 0.025, 0.015), _rgb(0.55, 0.85, 0.35)),
    ObjectKind("soap bar", "box", (0.035, 0.022, 0.012), _rgb(0.95, 0.75, 0.8)),
    ObjectKind("soda can", "upright_cylinder", (0.022, 0.035), _rgb(0.8, 0.05, 0.2)),
    ObjectKind("blue block", "box", (0.02, 0.02, 0.03), _rgb(0.1, 0.25, 0.85)),
    ObjectKind("corn", "capsule", (0.020, 0.050), _rgb(0.95, 0.9, 0.55)),
    ObjectKind("red pepper", "capsule", (0.024, 0.022), _rgb(0.75, 0.0, 0.0)),
    ObjectKind("spool", "cylinder", (0.020, 0.030), _rgb(0.55, 0.35, 0.15)),
    ObjectKind("tofu", "box", (0.025, 0.025, 0.018), _rgb(0.97, 0.95, 0.85)),
    ObjectKind("brick", "box", (0.040, 0.020, 0.020), _rgb(0.6, 0.25, 0.15)),
    ObjectKind("cup", "upright_cylinder", (0.025, 0.030), _rgb(0.1, 0.65, 0.65)),
)

UNSEEN_OBJECTS: tuple[ObjectKind, ...] = (
    ObjectKind("potato", "capsule", (0.025, 0.015), _rgb(0.65, 0.5, 0.3)),
    ObjectKind("sausage", "capsule", (0.015, 0.050), _rgb(0.9, 0.5, 0.5)),
    ObjectKind("lime", "capsule", (0.021, 0.008), _rgb(0.5, 0.9, 0.1)),
    ObjectKind("eraser", "box", (0.030, 0.015, 0.010), _rgb(1.0, 0.4, 0.7)),
    ObjectKind("battery", "cylinder", (0.014, 0.030), _rgb(0.15, 0.15, 0.15)),
    ObjectKind("marker", "capsule", (0.012, 0.060), _rgb(0.2, 0.2, 0.6)),
    ObjectKind("dice", "box", (0.018, 0.018, 0.018), _rgb(1.0, 1.0, 1.0)),
    ObjectKind("candle", "upright_cylinder", (0.020, 0.040), _rgb(0.95, 0.9, 0.7)),
)


@dataclasses.dataclass(frozen=True)
class ReceptacleKind:
    """A static receptacle. `shape` is "plate" (disk of `size[0]` radius), "bowl" (disk with a
    low round wall) or "tray" (`size` = x, y half extents, with a low rectangular wall)."""

    name: str
    shape: str
    size: tuple[float, ...]
    rgba: tuple[float, float, float, float]
    rim_rgba: tuple[float, float, float, float]

    @property
    def inner_half_extent(self) -> tuple[float, float]:
        """Half extents (x, y) of the area an object's centre must be in to count as on it."""
        if self.shape == "tray":
            return (self.size[0] - 0.01, self.size[1] - 0.01)
        inner = self.size[0] - 0.012
        return (inner, inner)

    @property
    def footprint_radius(self) -> float:
        if self.shape == "tray":
            return float((self.size[0] ** 2 + self.size[1] ** 2) ** 0.5)
        return self.size[0]


BASE_THICKNESS = 0.008  # every receptacle's floor; its top is where objects rest
WALL_HEIGHT = 0.022  # bowls and trays
PLATE_LIP_HEIGHT = 0.014

TRAIN_RECEPTACLES: tuple[ReceptacleKind, ...] = (
    ReceptacleKind("plate", "plate", (0.085,), _rgb(0.95, 0.95, 0.95), _rgb(0.75, 0.75, 0.8)),
)

UNSEEN_RECEPTACLES: tuple[ReceptacleKind, ...] = (
    ReceptacleKind("blue plate", "plate", (0.075,), _rgb(0.25, 0.45, 0.9), _rgb(0.1, 0.2, 0.6)),
    ReceptacleKind("black plate", "plate", (0.095,), _rgb(0.12, 0.12, 0.12), _rgb(0.3, 0.3, 0.3)),
    ReceptacleKind("green tray", "tray", (0.095, 0.07), _rgb(0.3, 0.7, 0.35), _rgb(0.15, 0.45, 0.2)),
    ReceptacleKind("wooden tray", "tray", (0.08, 0.08), _rgb(0.7, 0.5, 0.3), _rgb(0.5, 0.33, 0.18)),
    ReceptacleKind("red bowl", "bowl", (0.08,), _rgb(0.85, 0.2, 0.2), _rgb(0.6, 0.1, 0.1)),
    ReceptacleKind("yellow bowl", "bowl", (0.09,), _rgb(0.95, 0.8, 0.2), _rgb(0.75, 0.6, 0.1)),
)


@dataclasses.dataclass(frozen=True)
class TableLook:
    """A table cloth laid over the workspace: a base colour with an optional pattern
    ("plain", "stripes", "checker", "grid") in a second colour."""

    name: str
    base_rgba: tuple[float, float, float, float]
    pattern: str
    pattern_rgba: tuple[float, float, float, float]


_TRAIN_TONES = (
    ("oak", _rgb(0.62, 0.45, 0.28)),
    ("walnut", _rgb(0.38, 0.25, 0.15)),
    ("birch", _rgb(0.85, 0.75, 0.58)),
    ("slate", _rgb(0.35, 0.37, 0.4)),
    ("concrete", _rgb(0.6, 0.6, 0.58)),
    ("cream", _rgb(0.92, 0.9, 0.82)),
    ("sage", _rgb(0.55, 0.62, 0.5)),
    ("sand", _rgb(0.78, 0.68, 0.5)),
)


def _darker(rgba, factor=0.7):
    return (rgba[0] * factor, rgba[1] * factor, rgba[2] * factor, 1.0)


# Train looks are muted tones, plain or striped; unseen looks are saturated and use patterns
# the policy never saw, so "unseen table" is a real visual shift and not a colour tweak.
TRAIN_TABLES: tuple[TableLook, ...] = tuple(
    TableLook(f"{tone} {pattern}", rgba, pattern, _darker(rgba))
    for tone, rgba in _TRAIN_TONES
    for pattern in ("plain", "stripes")
)

UNSEEN_TABLES: tuple[TableLook, ...] = (
    TableLook("red checker", _rgb(0.8, 0.15, 0.15), "checker", _rgb(0.95, 0.95, 0.95)),
    TableLook("blue grid", _rgb(0.15, 0.3, 0.75), "grid", _rgb(0.9, 0.9, 0.3)),
    TableLook("green checker", _rgb(0.1, 0.55, 0.2), "checker", _rgb(0.05, 0.05, 0.05)),
    TableLook("purple grid", _rgb(0.5, 0.2, 0.6), "grid", _rgb(0.95, 0.6, 0.1)),
    TableLook("teal checker", _rgb(0.0, 0.6, 0.6), "checker", _rgb(1.0, 0.85, 0.3)),
)

TRAIN_INSTRUCTIONS: tuple[str, ...] = ("put the {object} on the {receptacle}",)

# Sixteen paraphrases, as in RL4VLA's unseen-instruction setting.
UNSEEN_INSTRUCTIONS: tuple[str, ...] = (
    "place the {object} onto the {receptacle}",
    "move the {object} to the {receptacle}",
    "pick up the {object} and put it on the {receptacle}",
    "can you put the {object} on the {receptacle}",
    "set the {object} down on the {receptacle}",
    "the {object} goes on the {receptacle}",
    "transfer the {object} to the {receptacle}",
    "grab the {object} and drop it on the {receptacle}",
    "lay the {object} on the {receptacle}",
    "get the {object} onto the {receptacle}",
    "i want the {object} on the {receptacle}",
    "relocate the {object} onto the {receptacle}",
    "carry the {object} over to the {receptacle}",
    "deposit the {object} on the {receptacle}",
    "please place the {object} on top of the {receptacle}",
    "position the {object} on the {receptacle}",
)
