"""The put-on-plate task family on ManiSkill3: Panda arm, primitive-shape objects and receptacles.

Every setting of `settings.SETTINGS` is registered as its own ManiSkill env id (see
`SettingSpec.env_id`); they share this one class and differ only in the `setting` keyword.

All candidate objects, receptacles and table cloths of a setting are built once per scene and
the ones not used by an episode are parked out of sight. Choosing what appears is then a pose
change, so episodes vary without rebuilding the scene and the same code serves one CPU scene or
many GPU sub-scenes (each sub-scene picks its own object by pose).

Action (7-D, OpenVLA/Bridge convention, physical units, what `unnormalize` of OpenVLA yields):
  [dx, dy, dz] metres in the robot base frame (= world axes), clipped to +-0.1 per step;
  [droll, dpitch, dyaw] radians, XYZ Euler angles of a rotation applied about the end-effector
  in world-aligned axes (norm clipped to 0.1 per step);
  gripper in [0, 1], 1 = open, 0 = closed.
This is converted to ManiSkill's normalized `pd_ee_delta_pose` action ([-1, 1] per dimension)
in `openvla_to_controller_action`.

Reward is RL4VLA's potential difference r_t = P_t - P_{t-1},
P = 0.1 * ever_grasped + 0.1 * ever_grasped_5_consecutive_steps + 1.0 * (on_receptacle and ever_grasped).
`reach_shaping` w > 0 (a training option, off by default) adds the differences of a second
potential, -w * (gripper-to-object distance in metres) until the first grasp and constant from
then on, so that episodes that never grasp (66 of the 110 failures of exp36's SFT policy,
docs/results/cpu.md) still say which steps came closer.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import sapien
import torch
from mani_skill.envs.sapien_env import BaseEnv
from mani_skill.sensors.camera import CameraConfig
from mani_skill.utils import sapien_utils
from mani_skill.utils.registration import register_env
from mani_skill.utils.scene_builder.table import TableSceneBuilder
from mani_skill.utils.structs.actor import Actor
from mani_skill.utils.structs.link import Link
from mani_skill.utils.structs.pose import Pose
from mani_skill.utils.structs.types import SimConfig
from transforms3d.euler import euler2quat

from rl2vla_jax.envs import catalog, perturbations, view_culling
from rl2vla_jax.envs.settings import MOVE_DISTANCE_MIN, SETTINGS, SettingSpec

ROBOT_BASE_XYZ = (-0.615, 0.0, 0.0)
# A "ready" pose with the hand pulled back and up (TCP at about (-0.215, 0, 0.286), pointing
# down): ManiSkill's usual rest pose hovers the hand over the workspace centre, where it hides
# objects from the third-person camera in the first frame.
PANDA_REST_QPOS = np.array([0.0, -0.4, 0.0, -2.6, 0.0, 2.2, np.pi / 4, 0.04, 0.04])
TRAIN_QPOS_NOISE = 0.02  # ManiSkill's usual start noise
UNSEEN_QPOS_OFFSET = (0.1, 0.2)  # |offset| range per arm joint for the unseen robot pose

# Placement geometry, in world metres (table top at z = 0).
WORKSPACE_CENTRE = np.array([-0.09, 0.0])
TRAIN_OBJECT_RADIUS = 0.16  # train objects spawn in this disk around the centre
UNSEEN_RING = (0.19, 0.24)  # unseen positions: this ring around the centre ...
UNSEEN_RING_X = (-0.28, 0.1)  # ... clipped to what the Panda reaches from above
RECEPTACLE_REGION = ((-0.22, 0.02), (-0.26, 0.26))  # x and y ranges of receptacle centres
TRAIN_YAW = (-0.6, 0.6)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the ID settings (train, id) place the target object and the receptacle."""

    object_radius: float  # target objects spawn in this disk around WORKSPACE_CENTRE
    receptacle_region: tuple  # x and y ranges of receptacle centres
    yaw: tuple  # object yaw range


LAYOUTS = {
    "full": Layout(TRAIN_OBJECT_RADIUS, RECEPTACLE_REGION, TRAIN_YAW),
    # A CPU-sized ID distribution: the object within 4 cm of the centre, the plate on its left,
    # small yaws. A from-scratch model on 2 cores cannot learn the full spread in minutes
    # (docs/results/cpu.md); the OOD settings keep the full layout.
    "narrow": Layout(0.04, ((-0.14, -0.04), (0.15, 0.21)), (-0.2, 0.2)),
}

# Third-person cameras, both from across the table facing the robot (like Bridge's camera).
# "close" frames the workspace tighter: at 64 px an object is ~5 px wide instead of ~3.
CAMERAS = {
    "wide": dict(eye=(0.42, 0.36, 0.58), target=(-0.22, 0.0, 0.0), fov=0.95),
    "close": dict(eye=(0.22, 0.24, 0.44), target=(-0.12, 0.0, 0.03), fov=0.85),
}
UNSEEN_YAW_ABS = (0.9, np.pi / 2)
MOVE_AT_STEP_REGION = 0.17

ON_RECEPTACLE_MAX_HEIGHT = 0.07
PARKING_X = 1.2  # behind the camera, on the floor, inside the 5 m GPU sub-scene spacing
CLOTH_HALF_SIZE = (0.6, 0.8)
CLOTH_CENTRE_X = -0.12

OBJECT_FRICTION = 1.0
SIM_FREQ = 100
CONTROL_FREQ = 5  # RL4VLA controls at 5 Hz


def _pool(which: str | None, train, unseen) -> list:
    """The train or unseen catalogue list a setting field names (none when the field is None)."""
    return [] if which is None else list({"train": train, "unseen": unseen}[which])


class PutOnPlateEnv(BaseEnv):
    """Put the named object on the named receptacle (see the module docstring)."""

    SUPPORTED_ROBOTS = ["panda"]
    SUPPORTED_OBS_MODES = ("none", "state", "state_dict", "rgb", "rgb+segmentation", "sensor_data")

    def __init__(
        self,
        *args,
        setting: str = "train",
        image_size: int = 224,
        camera: str = "wide",
        layout: str = "full",
        robot_uids="panda",
        reach_shaping: float = 0.0,
        **kwargs,
    ):
        self.setting_spec: SettingSpec = SETTINGS[setting]
        self.reach_shaping = float(reach_shaping)
        self.image_size = int(image_size)
        self.camera = CAMERAS[camera]
        spec = self.setting_spec
        # "narrow" narrows the ID settings only. "narrow_all" (an evaluation option) puts the target
        # object and its receptacle on the narrow layout in every setting, so that a narrow-trained
        # policy's OOD score measures the setting's own shift, not also a spread it never saw.
        # Distractors keep the full layout: a second plate does not fit in the narrow region.
        if layout == "narrow_all":
            layout = "narrow"
        elif spec.category != "ID":
            layout = "full"
        self.layout = LAYOUTS[layout]
        self.distractor_layout = LAYOUTS["full"]
        self.object_kinds = _pool(spec.objects, catalog.TRAIN_OBJECTS, catalog.UNSEEN_OBJECTS)
        self.distractor_kinds = _pool(spec.distractor_object, catalog.TRAIN_OBJECTS, catalog.UNSEEN_OBJECTS)
        self.receptacle_kinds = _pool(spec.receptacles, catalog.TRAIN_RECEPTACLES, catalog.UNSEEN_RECEPTACLES)
        self.distractor_receptacle_kinds = _pool(
            spec.distractor_receptacle, catalog.TRAIN_RECEPTACLES, catalog.UNSEEN_RECEPTACLES
        )
        self.table_looks = _pool(spec.tables, catalog.TRAIN_TABLES, catalog.UNSEEN_TABLES)
        self.templates = _pool(spec.instructions, catalog.TRAIN_INSTRUCTIONS, catalog.UNSEEN_INSTRUCTIONS)
        # One actor per distinct kind; targets and distractors index into these lists.
        self.all_object_kinds = _unique_by_name(self.object_kinds + self.distractor_kinds)
        self.all_receptacle_kinds = _unique_by_name(self.receptacle_kinds + self.distractor_receptacle_kinds)
        self.instructions: list[str] = []
        wants_segmentation = spec.image_perturbation == "dynamic_texture"
        if "obs_mode" in kwargs and kwargs["obs_mode"] == "rgb" and wants_segmentation:
            kwargs["obs_mode"] = "rgb+segmentation"
        self._link_cullers: dict = {}  # per sensor; rebuilt with the scene
        super().__init__(*args, robot_uids=robot_uids, **kwargs)

    # ------------------------------------------------------------------ configuration
    @property
    def _default_sim_config(self):
        return SimConfig(sim_freq=SIM_FREQ, control_freq=CONTROL_FREQ)

    @property
    def _default_sensor_configs(self):
        pose = sapien_utils.look_at(eye=list(self.camera["eye"]), target=list(self.camera["target"]))
        size, fov = self.image_size, self.camera["fov"]
        return [CameraConfig("base_camera", pose, size, size, fov, 0.01, 10)]

    @property
    def _default_human_render_camera_configs(self):
        pose = sapien_utils.look_at(eye=[0.42, 0.36, 0.58], target=[-0.22, 0.0, 0.0])
        return CameraConfig("render_camera", pose, 448, 448, 0.95, 0.01, 10)

    def _load_agent(self, options: dict):
        super()._load_agent(options, sapien.Pose(p=list(ROBOT_BASE_XYZ)))

    # ------------------------------------------------------------------ scene
    def _load_scene(self, options: dict):
        self.table_scene = TableSceneBuilder(self, robot_init_qpos_noise=0.0)
        self.table_scene.build()
        self.cloth_actors = [self._build_cloth(i, look) for i, look in enumerate(self.table_looks)]
        self.object_actors = [self._build_object(i, kind) for i, kind in enumerate(self.all_object_kinds)]
        self.receptacle_actors = [
            self._build_receptacle(i, kind) for i, kind in enumerate(self.all_receptacle_kinds)
        ]
        self._object_half_heights = torch.tensor(
            [k.resting_half_height for k in self.all_object_kinds], device=self.device
        )
        self._receptacle_inner = torch.tensor(
            [k.inner_half_extent for k in self.all_receptacle_kinds], device=self.device
        )

    def _build_cloth(self, index: int, look: catalog.TableLook) -> Actor:
        builder = self.scene.create_actor_builder()
        hx, hy = CLOTH_HALF_SIZE
        builder.add_box_visual(
            pose=sapien.Pose(p=[0, 0, -0.0015]),
            half_size=[hx, hy, 0.002],
            material=sapien.render.RenderMaterial(base_color=list(look.base_rgba), roughness=0.9),
        )
        pattern = sapien.render.RenderMaterial(base_color=list(look.pattern_rgba), roughness=0.9)
        for centre, half in _pattern_boxes(look.pattern, hx, hy):
            builder.add_box_visual(
                pose=sapien.Pose(p=[centre[0], centre[1], 0.0007]),
                half_size=[half[0], half[1], 0.0003],
                material=pattern,
            )
        builder.initial_pose = sapien.Pose(p=[CLOTH_CENTRE_X, 0, -3.0 - 0.1 * index])
        return builder.build_kinematic(name=f"cloth/{look.name}")

    def _build_object(self, index: int, kind: catalog.ObjectKind) -> Actor:
        builder = self.scene.create_actor_builder()
        material = sapien.render.RenderMaterial(base_color=list(kind.rgba), roughness=0.6)
        physics = sapien.pysapien.physx.PhysxMaterial(
            static_friction=OBJECT_FRICTION, dynamic_friction=OBJECT_FRICTION, restitution=0.0
        )
        if kind.shape == "box":
            builder.add_box_collision(half_size=list(kind.half_size), material=physics)
            builder.add_box_visual(half_size=list(kind.half_size), material=material)
        elif kind.shape == "capsule":
            radius, half_length = kind.half_size
            builder.add_capsule_collision(radius=radius, half_length=half_length, material=physics)
            builder.add_capsule_visual(radius=radius, half_length=half_length, material=material)
        elif kind.shape in ("cylinder", "upright_cylinder"):
            radius, half_length = kind.half_size
            # SAPIEN cylinders lie along x; an upright one is turned so its axis is z.
            local = (
                sapien.Pose(q=euler2quat(0, np.pi / 2, 0))
                if kind.shape == "upright_cylinder"
                else sapien.Pose()
            )
            builder.add_cylinder_collision(
                pose=local, radius=radius, half_length=half_length, material=physics
            )
            builder.add_cylinder_visual(pose=local, radius=radius, half_length=half_length, material=material)
        else:
            raise ValueError(kind.shape)
        builder.initial_pose = self._parking_pose(index, kind.resting_half_height)
        return builder.build(name=f"object/{kind.name}")

    def _parking_pose(self, index: int, half_height: float) -> sapien.Pose:
        ground_z = -self.table_scene.table_height
        return sapien.Pose(
            p=[PARKING_X + 0.15 * (index % 8), -0.6 + 0.3 * (index // 8), ground_z + half_height]
        )

    def _build_receptacle(self, index: int, kind: catalog.ReceptacleKind) -> Actor:
        builder = self.scene.create_actor_builder()
        base = sapien.render.RenderMaterial(base_color=list(kind.rgba), roughness=0.5)
        rim = sapien.render.RenderMaterial(base_color=list(kind.rim_rgba), roughness=0.5)
        half_t = catalog.BASE_THICKNESS / 2
        upright = euler2quat(0, np.pi / 2, 0)
        if kind.shape in ("plate", "bowl"):
            radius = kind.size[0]
            builder.add_cylinder_collision(
                pose=sapien.Pose(p=[0, 0, half_t], q=upright), radius=radius, half_length=half_t
            )
            builder.add_cylinder_visual(
                pose=sapien.Pose(p=[0, 0, half_t], q=upright), radius=radius, half_length=half_t, material=rim
            )
            # A lighter inner disk, a hair above the rim, so the plate reads as a plate.
            builder.add_cylinder_visual(
                pose=sapien.Pose(p=[0, 0, half_t + 0.0006], q=upright),
                radius=radius - 0.012,
                half_length=half_t,
                material=base,
            )
            # A ring wall: a low lip for plates (so round objects do not roll off), higher for bowls.
            wall_height = catalog.WALL_HEIGHT if kind.shape == "bowl" else catalog.PLATE_LIP_HEIGHT
            segments = 16
            for s in range(segments):
                angle = 2 * np.pi * s / segments
                pose = sapien.Pose(
                    p=[radius * np.cos(angle), radius * np.sin(angle), wall_height / 2],
                    q=euler2quat(0, 0, angle),
                )
                half = [0.004, radius * np.pi / segments + 0.002, wall_height / 2]
                builder.add_box_collision(pose=pose, half_size=half)
                builder.add_box_visual(pose=pose, half_size=half, material=rim)
        elif kind.shape == "tray":
            hx, hy = kind.size
            builder.add_box_collision(pose=sapien.Pose(p=[0, 0, half_t]), half_size=[hx, hy, half_t])
            builder.add_box_visual(
                pose=sapien.Pose(p=[0, 0, half_t]), half_size=[hx, hy, half_t], material=base
            )
            wall_z = catalog.WALL_HEIGHT / 2
            for centre, half in (
                ((hx, 0), (0.004, hy + 0.004)),
                ((-hx, 0), (0.004, hy + 0.004)),
                ((0, hy), (hx, 0.004)),
                ((0, -hy), (hx, 0.004)),
            ):
                pose = sapien.Pose(p=[centre[0], centre[1], wall_z])
                builder.add_box_collision(pose=pose, half_size=[half[0], half[1], wall_z])
                builder.add_box_visual(pose=pose, half_size=[half[0], half[1], wall_z], material=rim)
        else:
            raise ValueError(kind.shape)
        builder.initial_pose = sapien.Pose(p=[0, 0, -4.0 - 0.2 * index])
        return builder.build_kinematic(name=f"receptacle/{kind.name}")

    # ------------------------------------------------------------------ episodes
    def _initialize_episode(self, env_idx: torch.Tensor, options: dict):
        rngs = [self._batched_episode_rng[int(i)] for i in env_idx]
        plans = [self._sample_episode(rng) for rng in rngs]
        with torch.device(self.device):
            self._reset_robot(env_idx, plans)
            self._place_cloths(plans)
            self._place_objects(plans)
            self._place_receptacles(plans)
            if not hasattr(self, "target_index"):
                self._allocate_episode_state()
            self.target_index[env_idx] = torch.tensor([p["target"] for p in plans], dtype=torch.long)
            self.receptacle_index[env_idx] = torch.tensor([p["receptacle"] for p in plans], dtype=torch.long)
            self.ever_grasped[env_idx] = False
            self.ever_grasped_5[env_idx] = False
            self.consecutive_grasp[env_idx] = 0
            self.success_once[env_idx] = False
            self.previous_potential[env_idx] = 0.0
            self.previous_shaping[env_idx] = float("nan")  # set at the episode's first reward
        if len(self.instructions) != self.num_envs:
            self.instructions = [""] * self.num_envs
        for i, plan in zip(env_idx.tolist(), plans):
            self.instructions[i] = plan["instruction"]
        if len(getattr(self, "episode_plans", [])) != self.num_envs:
            self.episode_plans = [None] * self.num_envs
        for i, plan in zip(env_idx.tolist(), plans):
            self.episode_plans[i] = plan

    def _allocate_episode_state(self):
        n = self.num_envs
        self.target_index = torch.zeros(n, dtype=torch.long, device=self.device)
        self.receptacle_index = torch.zeros(n, dtype=torch.long, device=self.device)
        self.ever_grasped = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.ever_grasped_5 = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.consecutive_grasp = torch.zeros(n, dtype=torch.long, device=self.device)
        self.success_once = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.previous_potential = torch.zeros(n, device=self.device)
        self.previous_shaping = torch.full((n,), float("nan"), device=self.device)

    def _sample_episode(self, rng: np.random.RandomState) -> dict:
        """Draw one episode's contents and layout (numpy, per env, so CPU and GPU agree)."""
        spec = self.setting_spec
        target_choice = _pick(rng, len(self.object_kinds))
        target = self.all_object_kinds.index(self.object_kinds[target_choice])
        receptacle = self.all_receptacle_kinds.index(
            self.receptacle_kinds[_pick(rng, len(self.receptacle_kinds))]
        )
        table = _pick(rng, len(self.table_looks))
        template = self.templates[_pick(rng, len(self.templates))]

        receptacles = [receptacle]
        if self.distractor_receptacle_kinds:
            options = [
                self.all_receptacle_kinds.index(k)
                for k in self.distractor_receptacle_kinds
                if self.all_receptacle_kinds.index(k) != receptacle
            ]
            receptacles.append(options[_pick(rng, len(options))])
        objects = [target]
        if self.distractor_kinds:
            options = [
                self.all_object_kinds.index(k)
                for k in self.distractor_kinds
                if self.all_object_kinds.index(k) != target
            ]
            objects.append(options[_pick(rng, len(options))])

        # Receptacles first, then objects, each rejected until nothing overlaps.
        placed: list[tuple[np.ndarray, float]] = []
        receptacle_xy = []
        for n, r in enumerate(receptacles):
            radius = self.all_receptacle_kinds[r].footprint_radius
            region = (self.layout if n == 0 else self.distractor_layout).receptacle_region
            xy = _sample_clear(rng, placed, radius, lambda region=region: _box_point(rng, region))
            placed.append((xy, radius))
            receptacle_xy.append(xy)
        object_xy, object_yaw = [], []
        for n, o in enumerate(objects):
            extent = _object_extent(self.all_object_kinds[o])
            if spec.positions == "unseen" and n == 0:
                xy = _sample_clear(rng, placed, extent, lambda: _ring_point(rng))
                yaw = rng.choice([-1.0, 1.0]) * rng.uniform(*UNSEEN_YAW_ABS)
            else:
                layout = self.layout if n == 0 else self.distractor_layout
                xy = _sample_clear(rng, placed, extent, lambda layout=layout: _disk_point(rng, layout.object_radius))
                yaw = rng.uniform(*layout.yaw)
            placed.append((xy, extent))
            object_xy.append(xy)
            object_yaw.append(float(yaw))

        if spec.robot_init == "unseen":
            offsets = rng.choice([-1.0, 1.0], size=7) * rng.uniform(*UNSEEN_QPOS_OFFSET, size=7)
        else:
            offsets = rng.normal(0.0, TRAIN_QPOS_NOISE, size=7)
        return dict(
            target=target,
            objects=objects,
            object_xy=object_xy,
            object_yaw=object_yaw,
            receptacle=receptacle,
            receptacles=receptacles,
            receptacle_xy=receptacle_xy,
            table=table,
            qpos_offset=offsets,
            instruction=template.format(
                object=self.all_object_kinds[target].name,
                receptacle=self.all_receptacle_kinds[receptacle].name,
            ),
            move_seed=int(rng.randint(2**31)),
        )

    def _reset_robot(self, env_idx, plans):
        qpos = np.tile(PANDA_REST_QPOS, (len(plans), 1))
        qpos[:, :7] += np.stack([p["qpos_offset"] for p in plans])
        self.table_scene.table.set_pose(
            sapien.Pose(p=[-0.12, 0, -self.table_scene.table_height], q=euler2quat(0, 0, np.pi / 2))
        )
        self.agent.reset(torch.as_tensor(qpos, dtype=torch.float32, device=self.device))
        self.agent.robot.set_pose(sapien.Pose(p=list(ROBOT_BASE_XYZ)))

    def _place_cloths(self, plans):
        for index, actor in enumerate(self.cloth_actors):
            z = torch.tensor([0.0 if p["table"] == index else -3.0 - 0.1 * index for p in plans])
            p = torch.zeros((len(plans), 3))
            p[:, 0] = CLOTH_CENTRE_X
            p[:, 2] = z
            actor.set_pose(Pose.create_from_pq(p))

    def _place_objects(self, plans):
        for index, (actor, kind) in enumerate(zip(self.object_actors, self.all_object_kinds)):
            parked = self._parking_pose(index, kind.resting_half_height)
            positions, quats = [], []
            for plan in plans:
                if index in plan["objects"]:
                    slot = plan["objects"].index(index)
                    x, y = plan["object_xy"][slot]
                    positions.append([x, y, kind.resting_half_height + 0.001])
                    quats.append(euler2quat(0, 0, plan["object_yaw"][slot]))
                else:
                    positions.append(list(parked.p))
                    quats.append([1.0, 0.0, 0.0, 0.0])
            actor.set_pose(
                Pose.create_from_pq(
                    torch.tensor(np.array(positions), dtype=torch.float32),
                    torch.tensor(np.array(quats), dtype=torch.float32),
                )
            )

    def _place_receptacles(self, plans):
        for index, actor in enumerate(self.receptacle_actors):
            positions = []
            for plan in plans:
                if index in plan["receptacles"]:
                    x, y = plan["receptacle_xy"][plan["receptacles"].index(index)]
                    positions.append([x, y, 0.0])
                else:
                    positions.append([0.0, 0.0, -4.0 - 0.2 * index])
            actor.set_pose(Pose.create_from_pq(torch.tensor(np.array(positions), dtype=torch.float32)))

    # ------------------------------------------------------------------ stepping
    def _stacked_object_positions(self) -> torch.Tensor:
        return torch.stack([a.pose.p for a in self.object_actors], dim=0)  # [K, B, 3]

    def target_pose(self) -> Pose:
        raw = torch.stack([a.pose.raw_pose for a in self.object_actors], dim=0)
        return Pose.create(raw[self.target_index, torch.arange(self.num_envs, device=self.device)])

    def receptacle_position(self) -> torch.Tensor:
        positions = torch.stack([a.pose.p for a in self.receptacle_actors], dim=0)
        return positions[self.receptacle_index, torch.arange(self.num_envs, device=self.device)]

    def target_is_grasped(self) -> torch.Tensor:
        if len(self.object_actors) == 1:
            return self.agent.is_grasping(self.object_actors[0])
        grasped = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        for index in torch.unique(self.target_index).tolist():
            mine = self.target_index == index
            grasped |= mine & self.agent.is_grasping(self.object_actors[index])
        return grasped

    def _step_action(self, action):
        action = super()._step_action(action)
        grasped = self.target_is_grasped()
        self.consecutive_grasp = torch.where(grasped, self.consecutive_grasp + 1, 0)
        self.ever_grasped |= grasped
        self.ever_grasped_5 |= self.consecutive_grasp >= 5
        self._last_grasped = grasped
        # elapsed_steps is incremented right after this returns: this is step number N.
        step_number = int(self._elapsed_steps.max().item()) + 1
        if (
            self.setting_spec.move_object_at_step is not None
            and step_number == self.setting_spec.move_object_at_step
        ):
            self._move_target_object()
        return action

    def _move_target_object(self):
        """Teleport each env's target >= 15 cm from where it is, clear of the receptacles."""
        positions = self.target_pose().p.cpu().numpy()
        for env, plan in enumerate(self.episode_plans):
            rng = np.random.RandomState(plan["move_seed"])
            kind = self.all_object_kinds[plan["target"]]
            placed = [
                (xy, self.all_receptacle_kinds[r].footprint_radius)
                for xy, r in zip(plan["receptacle_xy"], plan["receptacles"])
            ]
            placed += [(xy, 0.04) for xy in plan["object_xy"][1:]]
            current = positions[env, :2]
            new_xy = None
            for _ in range(200):
                candidate = _disk_point(rng, MOVE_AT_STEP_REGION)
                if np.linalg.norm(candidate - current) >= MOVE_DISTANCE_MIN and _is_clear(
                    candidate, _object_extent(kind), placed
                ):
                    new_xy = candidate
                    break
            if new_xy is None:  # fall back to the point diametrically across the centre
                new_xy = 2 * WORKSPACE_CENTRE - current
            plan["moved_to_xy"] = new_xy
            actor = self.object_actors[plan["target"]]
            pose = actor.pose.raw_pose.clone()
            pose[env, 0:2] = torch.as_tensor(new_xy, dtype=pose.dtype)
            pose[env, 2] = kind.resting_half_height + 0.001
            actor.set_pose(Pose.create(pose))
            actor.set_linear_velocity(torch.zeros((self.num_envs, 3), device=self.device))
            actor.set_angular_velocity(torch.zeros((self.num_envs, 3), device=self.device))
        if self.gpu_sim_enabled:
            self.scene._gpu_apply_all()
            self.scene.px.gpu_update_articulation_kinematics()
            self.scene._gpu_fetch_all()

    def evaluate(self) -> dict:
        if not hasattr(self, "target_index"):
            self._allocate_episode_state()
        grasped = getattr(self, "_last_grasped", None)
        if grasped is None or grasped.shape[0] != self.num_envs or self.elapsed_steps.max() == 0:
            grasped = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        offset = self.target_pose().p - self.receptacle_position()
        inner = self._receptacle_inner[self.receptacle_index]
        within = (offset[:, 0].abs() <= inner[:, 0]) & (offset[:, 1].abs() <= inner[:, 1])
        height = offset[:, 2] - self._object_half_heights[self.target_index]
        resting = (height >= catalog.BASE_THICKNESS - 0.01) & (height <= ON_RECEPTACLE_MAX_HEIGHT)
        on_receptacle = within & resting & ~grasped
        success = on_receptacle & self.ever_grasped
        self.success_once |= success
        return dict(
            success=success,
            success_once=self.success_once.clone(),
            on_receptacle=on_receptacle,
            is_grasped=grasped,
            ever_grasped=self.ever_grasped.clone(),
        )

    def potential(self, info: dict) -> torch.Tensor:
        return (
            0.1 * self.ever_grasped.float()
            + 0.1 * self.ever_grasped_5.float()
            + 1.0 * (info["on_receptacle"] & self.ever_grasped).float()
        )

    def compute_dense_reward(self, obs, action, info: dict):
        potential = self.potential(info)
        reward = potential - self.previous_potential
        self.previous_potential = potential
        if self.reach_shaping > 0:
            reward = reward + self._reach_shaping_reward()
        return reward

    def _reach_shaping_reward(self) -> torch.Tensor:
        distance = torch.linalg.norm(self.agent.tcp_pose.p - self.target_pose().p, dim=-1)
        started = ~torch.isnan(self.previous_shaping)
        shaping = torch.where(self.ever_grasped & started, self.previous_shaping, -self.reach_shaping * distance)
        # An episode's first step has no previous value and gets 0: the initial state's distance,
        # which no action chose, stays out of the return.
        previous = torch.where(started, self.previous_shaping, shaping)
        self.previous_shaping = shaping
        return shaping - previous

    def compute_normalized_dense_reward(self, obs, action, info: dict):
        return self.compute_dense_reward(obs, action, info)

    def compute_sparse_reward(self, obs, action, info: dict):
        return info["success"].float()

    # ------------------------------------------------------------------ observations
    def _get_obs_extra(self, info: dict):
        return dict(tcp_pose=self.agent.tcp_pose.raw_pose)

    def _get_obs_sensor_data(self, apply_texture_transforms: bool = True) -> dict:
        sensor_obs = super()._get_obs_sensor_data(apply_texture_transforms)
        camera = sensor_obs.get("base_camera")
        if camera is None or "rgb" not in camera or self.setting_spec.image_perturbation is None:
            return sensor_obs
        seeds = [int(s) for s in np.asarray(self._episode_seed).reshape(-1)[: self.num_envs]]
        step = int(self._elapsed_steps.max().item())
        if self.setting_spec.image_perturbation == "dynamic_texture":
            mask = torch.isin(camera.pop("segmentation")[..., 0], self._textured_segmentation_ids())
            camera["rgb"] = perturbations.blend_dynamic_texture(
                camera["rgb"], mask, self.setting_spec.perturbation_weight, seeds, step
            )
        else:
            camera["rgb"] = perturbations.blend_image_noise(
                camera["rgb"], self.setting_spec.perturbation_weight, seeds, step
            )
        return sensor_obs

    def _textured_segmentation_ids(self) -> torch.Tensor:
        if getattr(self, "_textured_ids", None) is None:
            robot_links = set(id(link) for link in self.agent.robot.links)
            objects = set(id(actor) for actor in self.object_actors)
            ids = [
                seg_id
                for seg_id, obj in self.segmentation_id_map.items()
                if (isinstance(obj, Link) and id(obj) in robot_links)
                or (isinstance(obj, Actor) and id(obj) in objects)
            ]
            self._textured_ids = torch.tensor(ids, dtype=torch.int32, device=self.device)
        return self._textured_ids

    # ------------------------------------------------------------------ rendering
    cull_out_of_view = True  # CPU rendering: skip robot links outside the camera's view (same image)

    def capture_sensor_data(self):
        if not self.cull_out_of_view or self.scene.gpu_sim_enabled:
            return super().capture_sensor_data()
        for name, sensor in self._sensors.items():
            culler = self._link_culler(name, sensor)
            if culler is not None:
                culler.hide_out_of_view()
            sensor.capture()
            if culler is not None:
                culler.show_all()  # after the capture: videos and other cameras see the whole robot

    def _link_culler(self, name: str, sensor) -> view_culling.LinkCuller | None:
        if name not in self._link_cullers:
            cameras = getattr(getattr(sensor, "camera", None), "_render_cameras", [])
            bodies = [
                body
                for link in self.agent.robot.links
                for component in link._objs
                if (body := component.entity.find_component_by_type(sapien.render.RenderBodyComponent))
            ]
            one_camera = len(cameras) == 1
            self._link_cullers[name] = view_culling.LinkCuller(bodies, cameras[0]) if one_camera else None
        return self._link_cullers[name]

    def _after_reconfigure(self, options):
        self._textured_ids = None
        self._link_cullers = {}


# ---------------------------------------------------------------------- geometry helpers
def _pick(rng: np.random.RandomState, count: int) -> int:
    """A uniform index that always consumes one draw (randint(1) consumes none), so the same
    seed gives the same layout in every setting and only what the setting changes differs."""
    return min(int(rng.uniform() * count), count - 1)


def _unique_by_name(kinds):
    seen, unique = set(), []
    for kind in kinds:
        if kind.name not in seen:
            seen.add(kind.name)
            unique.append(kind)
    return unique


def _object_extent(kind: catalog.ObjectKind) -> float:
    """Radius of the object's footprint on the table, for keeping things apart."""
    if kind.shape == "box":
        return float(np.hypot(kind.half_size[0], kind.half_size[1]))
    if kind.shape in ("capsule", "cylinder"):
        return kind.half_size[0] + kind.half_size[1]
    return kind.half_size[0]


def _disk_point(rng, radius) -> np.ndarray:
    r = radius * np.sqrt(rng.uniform())
    angle = rng.uniform(0, 2 * np.pi)
    return WORKSPACE_CENTRE + r * np.array([np.cos(angle), np.sin(angle)])


def _box_point(rng, region) -> np.ndarray:
    return np.array([rng.uniform(*region[0]), rng.uniform(*region[1])])


def _ring_point(rng) -> np.ndarray:
    for _ in range(100):
        r = rng.uniform(*UNSEEN_RING)
        angle = rng.uniform(0, 2 * np.pi)
        xy = WORKSPACE_CENTRE + r * np.array([np.cos(angle), np.sin(angle)])
        if UNSEEN_RING_X[0] <= xy[0] <= UNSEEN_RING_X[1]:
            return xy
    return WORKSPACE_CENTRE + np.array([0.0, UNSEEN_RING[0]])


def _is_clear(xy, extent, placed) -> bool:
    return all(np.linalg.norm(xy - other) >= extent + other_extent + 0.01 for other, other_extent in placed)


def _sample_clear(rng, placed, extent, draw) -> np.ndarray:
    xy = draw()
    for _ in range(200):
        if _is_clear(xy, extent, placed):
            return xy
        xy = draw()
    return xy


def _pattern_boxes(pattern: str, hx: float, hy: float):
    """(centre, half extents) of the stripes/squares drawn on a table cloth."""
    boxes = []
    if pattern == "stripes":
        count = 8
        width = 2 * hy / (2 * count)
        for i in range(count):
            boxes.append(((0.0, -hy + width * (2 * i + 0.5)), (hx, width / 2)))
    elif pattern == "checker":
        cells_x, cells_y = 6, 8
        cx, cy = hx / cells_x, hy / cells_y
        for i in range(cells_x):
            for j in range(cells_y):
                if (i + j) % 2 == 0:
                    boxes.append(((-hx + cx * (2 * i + 1), -hy + cy * (2 * j + 1)), (cx, cy)))
    elif pattern == "grid":
        for i in range(7):
            boxes.append(((-hx + 2 * hx * i / 6, 0.0), (0.006, hy)))
        for j in range(9):
            boxes.append(((0.0, -hy + 2 * hy * j / 8), (hx, 0.006)))
    elif pattern != "plain":
        raise ValueError(pattern)
    return boxes


def register_all() -> None:
    """Register one ManiSkill id per setting (idempotent: safe to call in every process)."""
    from mani_skill.utils.registration import REGISTERED_ENVS

    for spec in SETTINGS.values():
        if spec.env_id not in REGISTERED_ENVS:
            register_env(spec.env_id, max_episode_steps=80, setting=spec.name)(PutOnPlateEnv)
