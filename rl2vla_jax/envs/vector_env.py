"""One vectorised interface over the put-on-plate suites, for the trainer and the evaluator.

    env = make_vector_env("train", num_envs=4, backend="cpu", image_size=224, max_episode_steps=80)
    obs = env.reset(seed=0)                 # env i is seeded with seed + i
    obs, reward, terminated, truncated, info = env.step(actions)   # actions [B, 7], see actions.py
    env.step_send(group, actions[group]); ...; env.step_receive(group)  # cpu: a group of envs

Episodes never end early (RL4VLA runs every episode for the full horizon and scores success at
the last step); `truncated` turns True at `max_episode_steps`, there is no auto-reset, and the
caller resets all envs together. `terminated` is True only for an env whose worker crashed, or
hung (no answer to a step within `step_timeout_s`): the worker is killed and restarted, and
`info["worker_crashed"]` marks the episode so that the caller drops it.

Backends:
  "cpu": one ManiSkill env per `spawn`ed worker process (see cpu_worker.py); numpy outputs.
  "gpu": all envs batched in one ManiSkill GPU env; images cross to JAX through DLPack with no
         copy (after a clone, since the renderer reuses its buffer), actions come back the same way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import sys

import numpy as np

from rl2vla_jax.envs.cpu_worker import INFO_KEYS, worker_main
from rl2vla_jax.envs.rendering import require_vulkan

WORKER_TIMEOUT_S = 300.0  # a worker silent this long while starting or resetting is treated as crashed
STEP_TIMEOUT_S = 60.0  # default per-step limit: a step takes well under a second on one core


@dataclasses.dataclass(frozen=True)
class Observation:
    images: object  # uint8 [B, H, W, 3]: np.ndarray (cpu backend) or jax.Array (gpu backend)
    instructions: list[str]


def episode_seeds(seed: int | list[int], num_envs: int) -> list[int]:
    """Env i's episode seed: seed + i for an int; a list gives each env its own (equal seeds
    give equal initial states, as GRPO (s) needs)."""
    if isinstance(seed, int | np.integer):
        return [int(seed) + i for i in range(num_envs)]
    seeds = [int(s) for s in seed]
    if len(seeds) != num_envs:
        raise ValueError(f"reset got {len(seeds)} seeds for {num_envs} envs")
    return seeds


def make_vector_env(
    setting: str,
    num_envs: int,
    backend: str = "cpu",
    image_size: int = 224,
    max_episode_steps: int = 80,
    seed: int = 0,
    suite: str = "ours",
    env_options: dict | None = None,
    step_timeout_s: float = STEP_TIMEOUT_S,
    reuse=None,
):
    """Build `num_envs` envs of one setting of a suite (see `rl2vla_jax.envs.suites`).
    `env_options`: the task's own keyword arguments, e.g. {"camera": "close", "layout": "narrow"}.
    `step_timeout_s` (cpu backend): a worker silent this long in a step is restarted.
    `reuse`: a vector env this one replaces (e.g. the previous evaluation setting's). A CPU
    env of the same size, camera resolution and horizon switches its workers to the new setting
    and is returned; any other is closed first."""
    from rl2vla_jax.envs import suites

    entry = suites.get_setting(suite, setting)
    if reuse is not None:
        same_shape = CpuVectorEnv.shape_of(num_envs, image_size, max_episode_steps, step_timeout_s)
        if backend == "cpu" and suite != "rl4vla" and getattr(reuse, "shape", None) == same_shape:
            reuse.switch(entry.env_id, env_options, seed)
            return reuse
        reuse.close()
    require_vulkan()
    if suite == "rl4vla":  # the fork's tasks: one batched env, driven as RL4VLA drives them
        from rl2vla_jax.envs.rl4vla import Rl4vlaVectorEnv

        return Rl4vlaVectorEnv(entry, num_envs, max_episode_steps, seed, backend)
    if backend == "cpu":
        return CpuVectorEnv(
            entry.env_id, num_envs, image_size, max_episode_steps, seed, env_options, step_timeout_s
        )
    if backend == "gpu":
        from rl2vla_jax.envs.gpu_vector_env import GpuVectorEnv

        return GpuVectorEnv(entry.env_id, num_envs, image_size, max_episode_steps, seed, env_options)
    raise ValueError(f"backend must be 'cpu' or 'gpu', got {backend!r}")


@contextlib.contextmanager
def _main_module_hidden():
    """Keep `spawn` from re-running the caller's script in each worker.

    spawn re-imports `__main__` in the child unless it has neither `__file__` nor `__spec__`;
    the worker needs nothing from it, and scripts without an `if __name__ == "__main__"` guard
    would otherwise start workers recursively."""
    main = sys.modules["__main__"]
    saved_spec = getattr(main, "__spec__", None)
    saved_file = main.__dict__.pop("__file__", None)
    main.__spec__ = None
    try:
        yield
    finally:
        main.__spec__ = saved_spec
        if saved_file is not None:
            main.__file__ = saved_file


class WorkerCrashed(RuntimeError):
    pass


class WorkerHung(WorkerCrashed):
    """Alive but silent past its timeout (a simulator stuck in a solver or the renderer)."""


class _Worker:
    """A child process holding one simulator; restartable."""

    def __init__(self, env_id: str, image_size: int, max_episode_steps: int, env_options: dict):
        self.args = (env_id, image_size, max_episode_steps, env_options)
        self.process = None
        self.conn = None
        self.start()

    def start(self):
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=worker_main, args=(child, *self.args), daemon=True)
        with _main_module_hidden():
            self.process.start()
        child.close()
        self.conn = parent

    def wait_ready(self):
        status, payload = self.receive()
        if status != "ready":
            raise RuntimeError(f"simulator worker failed to start:\n{payload}")

    def send(self, command, data=None):
        try:
            self.conn.send((command, data))
        except (BrokenPipeError, OSError) as error:
            raise WorkerCrashed(str(error)) from error

    def receive(self, timeout: float = WORKER_TIMEOUT_S):
        try:
            if not self.conn.poll(timeout):
                raise WorkerHung(f"no answer in {timeout} s")
            message = self.conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError) as error:
            raise WorkerCrashed(f"worker died: {error!r}") from error
        if message[0] == "error":
            raise WorkerCrashed(message[1])
        return message

    def restart(self):
        self.kill()
        self.start()
        self.wait_ready()

    def kill(self):
        if self.process is not None and self.process.is_alive():
            self.process.kill()
        if self.process is not None:
            self.process.join(timeout=10)
        if self.conn is not None:
            self.conn.close()

    def remake(self, env_id: str, env_options: dict):
        """Ask the process for another env (answered by `wait_ready`); a restart builds it too."""
        self.args = (env_id, self.args[1], self.args[2], env_options)
        self.send("make", (env_id, env_options))

    def ask_to_close(self):
        try:
            self.send("close")
        except WorkerCrashed:
            pass

    def close(self):
        """After `ask_to_close`: wait for the process to exit (closing its simulator), then kill."""
        if self.process is not None:
            self.process.join(timeout=10)
        self.kill()


class CpuVectorEnv:
    """`num_envs` single-scene CPU simulators in worker processes, stepped in parallel.

    `step` steps every env; `step_send(indices, actions)` then `step_receive(indices)` step a
    group of them, so that the caller can work (act for another group) while the group's
    workers simulate: what a pipelined rollout does (`rl2vla_jax.policy.episodes`). A group's
    answers carry only its rows; each env counts its own steps (`truncated`), and
    `last_sim_seconds` is the slowest worker of the last group received."""

    def __init__(
        self,
        env_id: str,
        num_envs: int,
        image_size: int,
        max_episode_steps: int,
        seed: int = 0,
        env_options: dict | None = None,
        step_timeout_s: float = STEP_TIMEOUT_S,
    ):
        self.num_envs = int(num_envs)
        self.image_size = int(image_size)
        self.max_episode_steps = int(max_episode_steps)
        self.default_seed = seed
        self.step_timeout_s = float(step_timeout_s)
        self.workers = [
            _Worker(env_id, image_size, max_episode_steps, dict(env_options or {}))
            for _ in range(self.num_envs)
        ]
        for worker in self.workers:
            worker.wait_ready()
        self.instructions: list[str] = [""] * self.num_envs
        self._images = None
        self._crashed = np.zeros(self.num_envs, dtype=bool)
        self._in_flight = np.zeros(self.num_envs, dtype=bool)  # a step sent, its answer not read
        self._env_steps = np.zeros(self.num_envs, dtype=int)
        self._seeds = [seed + i for i in range(self.num_envs)]
        self.restarts = 0  # workers restarted, crashed or hung
        self.hangs = 0  # of which hung
        self.last_sim_seconds = 0.0

    @staticmethod
    def shape_of(num_envs: int, image_size: int, max_episode_steps: int, step_timeout_s: float) -> tuple:
        return (int(num_envs), int(image_size), int(max_episode_steps), float(step_timeout_s))

    @property
    def shape(self) -> tuple:
        """What `make_vector_env(reuse=...)` must match to switch these workers to another setting."""
        return self.shape_of(self.num_envs, self.image_size, self.max_episode_steps, self.step_timeout_s)

    @property
    def elapsed_steps(self) -> int:
        """Steps since the reset of the env that has taken the most."""
        return int(self._env_steps.max())

    @property
    def worker_pids(self) -> list[int]:
        return [worker.process.pid for worker in self.workers]

    def reset(self, seed: int | list[int] | None = None) -> Observation:
        self._seeds = episode_seeds(self.default_seed if seed is None else seed, self.num_envs)
        self._drain()
        for i in range(self.num_envs):
            self._send_or_restart(i, "reset", self._seeds[i])
        images = []
        for i, worker in enumerate(self.workers):
            try:
                _, image, instruction, _ = worker.receive()
            except WorkerCrashed:
                # A worker that dies during reset gets one fresh try; a second failure is real.
                self._restart(i)
                worker.send("reset", self._seeds[i])
                _, image, instruction, _ = worker.receive()
            images.append(image)
            self.instructions[i] = instruction
        self._images = np.stack(images)
        self._crashed[:] = False
        self._env_steps[:] = 0
        return Observation(images=self._images.copy(), instructions=list(self.instructions))

    def step(self, actions):
        """Every env one step: actions [num_envs, 7] -> (obs, reward, terminated, truncated, info)."""
        everyone = np.arange(self.num_envs)
        self.step_send(everyone, actions)
        return self.step_receive(everyone)

    def step_send(self, indices, actions) -> None:
        """Start one step of envs `indices` (actions [len(indices), 7]); returns at once."""
        indices = self._indices(indices)
        actions = np.asarray(actions, dtype=np.float32)
        if actions.shape != (len(indices), 7):
            raise ValueError(f"actions must be [{len(indices)}, 7], got {actions.shape}")
        if self._in_flight[indices].any():
            raise RuntimeError(f"envs {indices[self._in_flight[indices]].tolist()} have a step in flight")
        self._env_steps[indices] += 1
        for row, i in enumerate(indices):
            if self._crashed[i]:
                continue
            try:
                self.workers[i].send("step", actions[row])
                self._in_flight[i] = True
            except WorkerCrashed:
                self._mark_crashed(i)

    def step_receive(self, indices):
        """Wait for the step `step_send` started for envs `indices` (the same group). Returns
        (obs, reward, terminated, truncated, info) with the group's rows only."""
        indices = self._indices(indices)
        idle = ~self._in_flight[indices] & ~self._crashed[indices]
        if idle.any():
            raise RuntimeError(f"envs {indices[idle].tolist()} have no step in flight: step_send first")
        count = len(indices)
        reward = np.zeros(count, dtype=np.float32)
        info = {key: np.zeros(count, dtype=bool) for key in INFO_KEYS}
        self.last_sim_seconds = 0.0  # the slowest worker's time inside env.step (they run in parallel)
        for row, i in enumerate(indices):
            if not self._in_flight[i]:
                continue  # its episode crashed (and the worker restarted) before this step
            self._in_flight[i] = False
            try:
                _, image, env_reward, env_info, sim_seconds = self.workers[i].receive(self.step_timeout_s)
                self.last_sim_seconds = max(self.last_sim_seconds, sim_seconds)
            except WorkerCrashed as error:
                self.hangs += isinstance(error, WorkerHung)
                self._mark_crashed(i)
                continue
            self._images[i] = image
            reward[row] = env_reward
            for key, value in env_info.items():
                info[key][row] = value
        crashed = self._crashed[indices]
        info["worker_crashed"] = crashed.copy()
        for key in INFO_KEYS:
            info[key] &= ~crashed  # a crashed episode counts as failed (it keeps its last frame)
        truncated = self._env_steps[indices] >= self.max_episode_steps
        observation = Observation(
            images=self._images[indices], instructions=[self.instructions[i] for i in indices]
        )
        return observation, reward, crashed.copy(), truncated, info

    def _indices(self, indices) -> np.ndarray:
        indices = np.asarray(indices, dtype=int).reshape(-1)
        if indices.size and (indices.min() < 0 or indices.max() >= self.num_envs):
            raise ValueError(f"env indices must lie in [0, {self.num_envs}), got {indices.tolist()}")
        if len(np.unique(indices)) != len(indices):
            raise ValueError(f"env indices repeat: {indices.tolist()}")
        return indices

    def _drain(self):
        """Read (and drop) the answers of steps still in flight, e.g. after a rollout that
        stopped mid-step; a worker that does not answer is restarted."""
        for i in np.flatnonzero(self._in_flight):
            self._in_flight[i] = False
            try:
                self.workers[i].receive(self.step_timeout_s)
            except WorkerCrashed:
                self._restart(i)

    def _send_or_restart(self, i: int, command: str, data):
        try:
            self.workers[i].send(command, data)
        except WorkerCrashed:
            self._restart(i)
            self.workers[i].send(command, data)

    def _mark_crashed(self, i: int):
        self._crashed[i] = True
        self._restart(i)

    def _restart(self, i: int):
        self.restarts += 1
        self.workers[i].restart()

    def switch(self, env_id: str, env_options: dict | None = None, seed: int = 0):
        """Another setting in the same worker processes: each builds the new env in place, which
        saves the interpreter start and imports of fresh workers (most of an evaluation setting's
        time with few episodes). Episodes reset with a fresh scene, so they do not depend on it."""
        self._drain()
        asked = []
        for i, worker in enumerate(self.workers):
            try:
                worker.remake(env_id, dict(env_options or {}))
                asked.append(i)
            except WorkerCrashed:
                self._restart(i)  # a fresh process with the new args, already ready
        for i in asked:
            try:
                self.workers[i].wait_ready()
            except (WorkerCrashed, RuntimeError):
                self._restart(i)
        self.default_seed = seed
        self._crashed[:] = False
        self._env_steps[:] = 0

    def close(self):
        # Every worker closes its simulator at once; closing them one by one took ~2.5 s each.
        for worker in self.workers:
            worker.ask_to_close()
        for worker in self.workers:
            worker.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
