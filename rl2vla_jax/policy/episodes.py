"""One episode loop over a vector env, used by RL rollouts and by evaluation, and the RL
`Rollout` it produces.

Every env runs one episode of the env's full horizon (no auto-reset, as RL4VLA); success is
scored at the last step. Prompts are padded to a fixed length so that new instructions never
recompile the act step.

Device-resident envs (the gpu backend: observations are jax arrays) keep the images, the act
step's outputs and the recorded buffer on the device: actions are decoded there and handed to
the env as jax arrays, and only the env's small per-env host values (rewards, terminations,
success) live on the host (docs/performance.md, "Device-resident rollouts").
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from rl2vla_jax.data.prompt import encode_prompts
from rl2vla_jax.policy.actions import ActionDecoder
from rl2vla_jax.policy.preprocess import resize_images


@struct.dataclass
class Rollout:
    """Time-major [T, B, ...] transitions of one RL iteration (the update flattens T*B)."""

    images: jax.Array  # uint8 [T, B, S, S, 3], already at the model's image size
    prompt_ids: jax.Array  # int32 [T, B, L], right-padded
    prompt_mask: jax.Array  # bool [T, B, L]
    tokens: jax.Array  # int32 [T, B, 7] action bin indices
    token_log_probs: jax.Array  # float32 [T, B, 7] each token's, at the sampling temperature
    values: jax.Array  # float32 [T, B] (zeros without a critic)
    rewards: jax.Array  # float32 [T, B]
    dones: jax.Array  # float32 [T, B] terminations
    bootstrap_value: jax.Array  # float32 [B]: V of the state after the last step
    group_ids: jax.Array  # int32 [B] GRPO groups
    valid: jax.Array  # float32 [T, B]: 0 for the samples of a dropped (crashed or hung) episode

    @property
    def log_probs(self) -> jax.Array:
        """float32 [T, B]: the whole action's log-prob, summed over its tokens."""
        return self.token_log_probs.sum(axis=-1)

    def env_axes(self) -> Rollout:
        """Which axis of each field indexes the envs (for splitting a batch over devices)."""
        flat = {"bootstrap_value", "group_ids"}
        return Rollout(**{f.name: 0 if f.name in flat else 1 for f in dataclasses.fields(self)})


@dataclasses.dataclass(frozen=True)
class Actor:
    """What acting needs besides the parameters: the envs, the jitted act step
    (`rl2vla_jax.policy.act.make_act`), and the translation between env and policy."""

    env: Any
    act: Any
    tokenizer: Any
    decoder: ActionDecoder
    image_size: int  # the model's
    prompt_len: int
    vocab_size: int  # the model's llm.vocab_size: which id the prompt's empty token gets
    # k > 1: the envs run in k groups, the policy acting for one while the others simulate
    # (`run_episodes`); needs an env with step_send / step_receive (the cpu backend).
    pipeline_groups: int = 1


@dataclasses.dataclass
class Episodes:
    """What one call of `run_episodes` returns. Per env [B]: success (at the last step),
    success_once, return, episode_length (first termination, else the horizon). `steps`
    (time-major host arrays for a `Rollout`) and `bootstrap_value` only when recorded;
    `frames[k]` the horizon + 1 camera frames of env k for videos; `seconds` per phase.
    With a device-resident env, the steps of the act step's outputs (images, tokens, log-probs,
    values, entropies, descriptor), `bootstrap_value` and `frames` are jax arrays on its device.
    `dropped` [B]: episodes whose simulator worker crashed or hung (the env restarts it): left
    out of the means, counted in `episodes_dropped`, and marked invalid in the `Rollout`, so
    that none of their transitions trains the policy or the critic."""

    success: np.ndarray
    success_once: np.ndarray
    returns: np.ndarray
    episode_length: np.ndarray
    prompt_ids: np.ndarray
    prompt_mask: np.ndarray
    steps: dict[str, np.ndarray | jax.Array] | None
    bootstrap_value: np.ndarray | jax.Array | None
    frames: list[list[np.ndarray | jax.Array]]
    seconds: dict[str, float]
    dropped: np.ndarray | None = None

    def stats(self) -> dict[str, float]:
        """Batch means over the episodes not dropped, as the trainer logs them (0 when every
        episode was dropped: the count says so)."""
        kept = ~self.dropped if self.dropped is not None else np.ones(len(self.returns), bool)
        # time-major [T, B] steps of the kept episodes (all of them, uncopied, in a healthy run)
        kept_steps = lambda x: np.asarray(x) if kept.all() else np.asarray(x)[:, kept]
        mean = lambda x: float(np.asarray(x)[kept].mean()) if kept.any() else 0.0
        out = {
            "return": mean(self.returns),
            "success": mean(self.success),
            "success_once": mean(self.success_once),
            "episode_length": mean(self.episode_length),
            "episodes_dropped": float((~kept).sum()),
        }
        if self.steps is not None:
            entropy, descriptor = kept_steps(self.steps["entropy"]), kept_steps(self.steps["descriptor"])
            out["policy_entropy"] = float(entropy.mean()) if kept.any() else 0.0
            out["descriptor_mean"] = float(descriptor.mean()) if kept.any() else 0.0
            out["descriptor_std"] = float(descriptor.std()) if kept.any() else 0.0
        return out | {f"time_{k}": v for k, v in self.seconds.items()}


def concatenate(parts: list[Episodes]) -> Episodes:
    """Several `run_episodes` results of the same envs and horizon as one batch, env after env
    (the first part's envs first): per-env arrays join on their first axis, time-major steps on
    the second, the phases' seconds add up. Only the first part may keep video frames (`frames[k]`
    is env k's)."""
    if len(parts) == 1:
        return parts[0]
    if any(p.frames for p in parts[1:]):
        raise ValueError("only the first part may keep video frames: frames[k] is the k-th env's")
    join = lambda xs, axis: (jnp if isinstance(xs[0], jax.Array) else np).concatenate(xs, axis=axis)
    first = parts[0]
    dropped = None
    if any(p.dropped is not None for p in parts):
        dropped = np.concatenate(
            [np.zeros(len(p.returns), bool) if p.dropped is None else p.dropped for p in parts]
        )
    return Episodes(
        **{k: join([getattr(p, k) for p in parts], 0) for k in _PER_ENV},
        steps=None if first.steps is None else {k: join([p.steps[k] for p in parts], 1) for k in first.steps},
        bootstrap_value=None
        if first.bootstrap_value is None
        else join([p.bootstrap_value for p in parts], 0),
        frames=first.frames,
        seconds={k: sum(p.seconds[k] for p in parts) for k in first.seconds},
        dropped=dropped,
    )


_PER_ENV = ("success", "success_once", "returns", "episode_length", "prompt_ids", "prompt_mask")


def env_groups(num_envs: int, pipeline_groups: int) -> list[np.ndarray]:
    """The envs split into `pipeline_groups` contiguous groups of equal size (one compiled act
    step serves them all)."""
    if pipeline_groups < 1 or num_envs % pipeline_groups:
        raise ValueError(f"pipeline_groups={pipeline_groups} must be >= 1 and divide num_envs={num_envs}")
    return np.split(np.arange(num_envs), pipeline_groups)


@jax.jit
def env_keys(rng: jax.Array, t, envs: jax.Array) -> jax.Array:
    """The sampling keys of envs `envs` at step t: fold_in(fold_in(rng, t), i) for env i, so
    that env i's draw depends on (rng, t, i) only, never on which envs act beside it."""
    step_key = jax.random.fold_in(rng, t)
    return jax.vmap(lambda i: jax.random.fold_in(step_key, i))(envs)


class _GroupStepper:
    """Steps one group of envs: `send` starts it, `receive` waits for it. With one group the
    env's plain `step` does both (every backend has it); with more, the env must split them
    (`CpuVectorEnv.step_send` / `step_receive`)."""

    def __init__(self, env, groups: list[np.ndarray]):
        if len(groups) > 1 and not hasattr(env, "step_send"):
            raise ValueError(
                f"{type(env).__name__} steps all its envs at once: pipelined rollouts "
                "(pipeline_groups > 1) need the cpu backend's worker processes"
            )
        self.env, self.groups, self.pending = env, groups, {}

    def send(self, g: int, actions) -> None:
        if len(self.groups) > 1:
            self.env.step_send(self.groups[g], actions)
        else:
            self.pending[g] = actions

    def receive(self, g: int):
        if len(self.groups) > 1:
            return self.env.step_receive(self.groups[g])
        return self.env.step(self.pending.pop(g))


def run_episodes(
    actor: Actor,
    policy_params,
    critic_params,
    seeds,
    rng: jax.Array,
    temperature: float,
    record: bool = False,
    keep_videos: int = 0,
    keep_images: bool = True,
) -> Episodes:
    """One episode per env at `temperature`; env i samples step t with key
    fold_in(fold_in(rng, t), i) (`env_keys`). `record=True` keeps every transition (and values
    the state after the last step, for GAE's bootstrap): what an RL iteration needs;
    evaluation records only for diagnostics and then drops the images (`keep_images=False`).

    With `actor.pipeline_groups` = k > 1 the envs run in k groups: the policy acts for group
    g while the simulator workers step the other groups (RLinf's pipeline). Since each env's
    keys and inputs are its own, every per-env result equals the sequential rollout's (k = 1)
    with the same seeds and rng; only `seconds` differ ("simulator" is then the time spent
    waiting for workers, the part not hidden behind the policy)."""
    env = actor.env
    groups = env_groups(env.num_envs, actor.pipeline_groups)
    stepper = _GroupStepper(env, groups)
    whole = len(groups) == 1  # the whole batch at once: no row selection (device arrays stay whole)
    seconds = {"simulator": 0.0, "policy": 0.0, "host": 0.0}
    clock = time.perf_counter()
    obs = env.reset(seed=seeds)
    seconds["simulator"] += time.perf_counter() - clock
    prompt_ids, prompt_mask = encode_prompts(
        actor.tokenizer, obs.instructions, actor.prompt_len, vocab_size=actor.vocab_size
    )
    on_device = isinstance(obs.images, jax.Array)  # a device-resident env (the gpu backend)
    # The prompts go to the device once, not with every act call.
    prompts = (jnp.asarray(prompt_ids), jnp.asarray(prompt_mask)) if on_device else (prompt_ids, prompt_mask)
    frame = (lambda image: image) if on_device else np.asarray  # video frames stay where they are
    horizon, num_envs = env.max_episode_steps, env.num_envs
    keys = (
        "images",
        "tokens",
        "token_log_probs",
        "values",
        "rewards",
        "dones",
        "entropy",
        "entropies",
        "descriptor",
    )
    steps: dict[str, list] = {k: [] for k in keys}
    returns = np.zeros(num_envs)
    success_once = np.zeros(num_envs, bool)
    terminated_before = np.zeros(num_envs, bool)
    episode_length = np.full(num_envs, horizon)
    frames = [[frame(obs.images[k])] for k in range(keep_videos)]
    success = np.zeros(num_envs, bool)
    dropped = np.zeros(num_envs, bool)
    bootstrap_value = np.zeros(num_envs, np.float32) if record else None
    bootstrap_parts = []  # device-resident: each group's bootstrap values, in row order
    group_images = [obs.images if whole else obs.images[rows] for rows in groups]

    def store(t: int, rows, key: str, value) -> None:
        """Row `rows` of step t's [B, ...] record (the groups fill one step's arrays). Device
        arrays stay on the device: each group's part, in row order (the groups are contiguous
        and act in order), joined by `_stack` at the end."""
        if isinstance(value, jax.Array):
            if len(steps[key]) == t:
                steps[key].append([])
            steps[key][t].append(value)
            return
        value = np.asarray(value)
        if len(steps[key]) == t:
            steps[key].append(value if whole else np.empty((num_envs, *value.shape[1:]), value.dtype))
        if not whole:
            steps[key][t][rows] = value

    for t in range(horizon + 1):  # step `horizon` only receives the last step (and bootstraps)
        for g, rows in enumerate(groups):
            if t > 0:  # group g's step t - 1, sent during the previous pass
                clock = time.perf_counter()
                obs, reward, terminated, _, info = stepper.receive(g)
                seconds["simulator"] += time.perf_counter() - clock
                terminated = np.asarray(terminated)
                first_end = terminated & ~terminated_before[rows]
                episode_length[rows] = np.where(first_end, t, episode_length[rows])
                terminated_before[rows] |= terminated
                success[rows] = np.asarray(info["success"], bool)
                dropped[rows] |= np.asarray(info.get("worker_crashed", False), bool)
                success_once[rows] |= success[rows]
                returns[rows] += np.asarray(reward)
                group_images[g] = obs.images
                for k in range(keep_videos):
                    if k in rows:
                        frames[k].append(frame(obs.images[k - rows[0]]))
                if record:
                    store(t - 1, rows, "rewards", reward)
                    store(t - 1, rows, "dones", terminated)
            if t == horizon and not record:
                continue
            clock = time.perf_counter()
            images = resize_images(group_images[g], actor.image_size)
            seconds["host"] += time.perf_counter() - clock
            clock = time.perf_counter()
            out = actor.act(
                policy_params,
                critic_params,
                images,
                prompts[0] if whole else prompts[0][rows],
                prompts[1] if whole else prompts[1][rows],
                env_keys(rng, t, rows),
                temperature,
            )
            # Waiting (not copying) on the device keeps the policy's time its own.
            out = jax.block_until_ready(out) if on_device else jax.device_get(out)
            seconds["policy"] += time.perf_counter() - clock
            if t == horizon:  # the state after the last step: only its value is needed (bootstrap)
                if on_device:
                    bootstrap_parts.append(out["value"].astype(jnp.float32))
                else:
                    bootstrap_value[rows] = np.asarray(out["value"], np.float32)
                continue
            clock = time.perf_counter()
            actions = actor.decoder(out["tokens"])
            seconds["host"] += time.perf_counter() - clock
            clock = time.perf_counter()
            stepper.send(g, actions)
            seconds["simulator"] += time.perf_counter() - clock
            if record:
                if keep_images:
                    store(t, rows, "images", images)
                store(t, rows, "tokens", out["tokens"])
                store(t, rows, "token_log_probs", out["token_log_probs"])
                store(t, rows, "values", out["value"])
                for key in ("entropy", "entropies", "descriptor"):
                    store(t, rows, key, out[key])
    return Episodes(
        success=success,
        success_once=success_once,
        returns=returns,
        episode_length=episode_length,
        prompt_ids=prompt_ids,
        prompt_mask=prompt_mask,
        steps={k: _stack(v) for k, v in steps.items() if v} if record else None,
        bootstrap_value=jnp.concatenate(bootstrap_parts) if bootstrap_parts else bootstrap_value,
        frames=frames,
        seconds=seconds,
        dropped=dropped,
    )


def _stack(records: list):
    """One key's records, time-major: host arrays [B, ...] per step, or device-resident lists
    of each group's part per step (joined and stacked on the device)."""
    if not isinstance(records[0], list):
        return np.stack(records)
    return jnp.stack([parts[0] if len(parts) == 1 else jnp.concatenate(parts) for parts in records])


def to_rollout(episodes: Episodes, group_ids) -> Rollout:
    """The recorded transitions of `run_episodes(record=True)` as an RL `Rollout`; the fields a
    device-resident rollout recorded on the device (images, tokens, log-probs, values, the
    bootstrap value) stay jax arrays there, the env's host values numpy."""
    steps = episodes.steps
    horizon, num_envs = steps["rewards"].shape
    dropped = np.zeros(num_envs, bool) if episodes.dropped is None else np.asarray(episodes.dropped, bool)
    return Rollout(
        images=steps["images"],
        prompt_ids=np.broadcast_to(episodes.prompt_ids, (horizon, *episodes.prompt_ids.shape)),
        prompt_mask=np.broadcast_to(episodes.prompt_mask, (horizon, *episodes.prompt_mask.shape)),
        tokens=steps["tokens"].astype(np.int32),
        token_log_probs=steps["token_log_probs"].astype(np.float32),
        values=steps["values"].astype(np.float32),
        rewards=steps["rewards"].astype(np.float32),
        dones=steps["dones"].astype(np.float32),
        bootstrap_value=episodes.bootstrap_value,
        group_ids=np.asarray(group_ids, np.int32),
        valid=np.broadcast_to(~dropped, (horizon, dropped.size)).astype(np.float32),
    )
