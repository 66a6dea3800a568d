"""Supervised warm-up (behaviour cloning) as OpenVLA trains: pure, jit-compiled steps.

Teacher forcing: the sequence is [prompt, a_1..a_7, EOS] with the action ids right after each
row's prompt. With q_b the sequence index of row b's last prompt token (rl/policy.py), the
full-vocabulary logits at q_b + j predict target j (a_{j+1} for j < 7, EOS for j = 7):

    loss = mean_{b, j<8} [ logsumexp_v z_{b,j,v} - z_{b,j,y_{b,j}} ]

over the WHOLE vocabulary (OpenVLA's cross-entropy on the action tokens and EOS; the prompt is
not a target). Accuracy, as OpenVLA logs it, is argmax over the full vocabulary == target, per
action dimension; `action_l1` compares the greedy action bin's centre with the target's, in
normalised [-1, 1] units.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from rl2vla_jax.data.action_tokenizer import decode_bin_indices
from rl2vla_jax.models.openvla import OpenVLA
from rl2vla_jax.models.trainable import FlatParams, merge
from rl2vla_jax.policy.preprocess import pixel_values
from rl2vla_jax.policy.sampling import sample_actions, teacher_forced_hidden


@struct.dataclass
class SFTState:
    step: jax.Array  # completed optimizer steps
    trainable: FlatParams  # what the optimizer updates (config.trainable: the LoRA factors)
    frozen: FlatParams
    opt_state: object

    @property
    def policy_params(self):
        return merge(self.trainable, self.frozen)


def make_optimizer(
    learning_rate: float,
    weight_decay: float,
    max_grad_norm: float,
    warmup_steps: int = 0,
    decay_steps: int = 0,
):
    """AdamW at a constant learning rate (OpenVLA's fine-tuning recipe: lr 5e-4) after a
    global-norm clip; with `warmup_steps` > 0 the updates ramp linearly from 1/warmup_steps of
    that to all of it (a model trained from scratch, whose first Adam steps are otherwise the
    largest and noisiest it takes); with `decay_steps` > 0 they then fall along a half cosine to
    zero at update `decay_steps` (a short run that must end converged, not at its peak rate)."""
    # The learning rate lives in the optimizer state (inject_hyperparams), not in the program:
    # runs that differ only in it share one compiled (and cached) step.
    adamw = optax.inject_hyperparams(optax.adamw)(learning_rate=learning_rate, weight_decay=weight_decay)
    parts = [optax.clip_by_global_norm(max_grad_norm), adamw]
    if warmup_steps > 0 or decay_steps > 0:
        parts.append(optax.scale_by_schedule(lambda count: _update_scale(count, warmup_steps, decay_steps)))
    return optax.chain(*parts)


def _update_scale(count, warmup_steps: int, decay_steps: int):
    """The multiplier of update `count` (0-based): linear warm-up, then the cosine decay."""
    scale = jnp.ones((), jnp.float32)
    if warmup_steps > 0:
        scale = jnp.minimum(scale, (count + 1) / warmup_steps)
    if decay_steps > 0:
        start = min(warmup_steps, decay_steps)
        progress = jnp.clip((count - start) / max(decay_steps - start, 1), 0.0, 1.0)
        scale = scale * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
    return scale


def create_state(trainable: FlatParams, frozen: FlatParams, tx) -> SFTState:
    return SFTState(
        step=jnp.zeros((), jnp.int32), trainable=trainable, frozen=frozen, opt_state=tx.init(trainable)
    )


def teacher_forced_logits(params, model_config, batch, eos_id: int) -> tuple[jax.Array, jax.Array]:
    """Full-vocabulary logits [B, 8, V] float32 at the positions predicting a_1..a_7, EOS, and
    the targets [B, 8] (vocab ids)."""
    action_ids = batch["tokens"].astype(jnp.int32) + model_config.action_token_begin
    targets = jnp.concatenate([action_ids, jnp.full_like(action_ids[:, :1], eos_id)], axis=1)
    hidden = teacher_forced_hidden(
        params,
        model_config,
        pixel_values(batch["images"]),
        batch["prompt_ids"],
        batch["prompt_mask"],
        targets,
    )
    logits = OpenVLA(model_config).apply({"params": params}, hidden, method=lambda m, h: m.llm.logits(h))
    return logits.astype(jnp.float32), targets


def example_metrics(model_config, logits: jax.Array, targets: jax.Array) -> dict[str, jax.Array]:
    """Per-example values [B] (and [B, 7] per-dimension correctness), summed by the callers."""
    cfg = model_config
    nll = jax.nn.logsumexp(logits, axis=-1) - jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
    correct = (jnp.argmax(logits, axis=-1) == targets).astype(jnp.float32)
    bin_logits = logits[:, :7, cfg.action_token_begin : cfg.action_token_end]
    target_bins = targets[:, :7] - cfg.action_token_begin
    predicted = decode_bin_indices(jnp.argmax(bin_logits, axis=-1), cfg.n_action_bins)
    l1 = jnp.abs(predicted - decode_bin_indices(target_bins, cfg.n_action_bins))
    return {
        "loss": jnp.mean(nll, axis=-1),
        "action_loss": jnp.mean(nll[:, :7], axis=-1),
        "eos_loss": nll[:, 7],
        "accuracy": jnp.mean(correct[:, :7], axis=-1),
        "eos_accuracy": correct[:, 7],
        "action_l1": jnp.mean(l1, axis=-1),
        "dim_accuracy": correct[:, :7],
    }


def _loss(model_config, eos_id, trainable, frozen, batch):
    logits, targets = teacher_forced_logits(merge(trainable, frozen), model_config, batch, eos_id)
    values = example_metrics(model_config, logits, targets)
    metrics = {k: jnp.mean(v) for k, v in values.items() if k != "dim_accuracy"}
    metrics |= {f"accuracy_dim{d}": jnp.mean(values["dim_accuracy"][:, d]) for d in range(7)}
    return metrics["loss"], metrics


def train_step(model_config, tx, eos_id: int, state: SFTState, batch) -> tuple[SFTState, dict]:
    """One optimizer step on a batch (jit with the first three arguments bound)."""
    grads, metrics = jax.grad(_loss, argnums=2, has_aux=True)(
        model_config, eos_id, state.trainable, state.frozen, batch
    )
    updates, opt_state = tx.update(grads, state.opt_state, state.trainable)
    trainable = optax.apply_updates(state.trainable, updates)
    metrics["grad_norm"] = optax.tree.norm(grads)
    return state.replace(step=state.step + 1, trainable=trainable, opt_state=opt_state), metrics


def greedy_metrics(params, model_config, batch) -> dict[str, jax.Array]:
    """What the policy does when it acts: the 7 tokens decoded greedily, each conditioned on the
    policy's own previous tokens (teacher forcing feeds the true ones, so its accuracy credits
    tokens 2-7 for copying what tokens 1-6 already say). Per example: [B, 7] correctness and
    the L1 error of the decoded bin centres in normalised [-1, 1] units."""
    out = sample_actions(
        params,
        model_config,
        pixel_values(batch["images"]),
        batch["prompt_ids"],
        batch["prompt_mask"],
        jax.random.key(0),
        0.0,
    )
    n_bins = model_config.n_action_bins
    targets = batch["tokens"].astype(jnp.int32)
    l1 = jnp.abs(decode_bin_indices(out["tokens"], n_bins) - decode_bin_indices(targets, n_bins))
    return {"greedy_dim_accuracy": (out["tokens"] == targets).astype(jnp.float32), "greedy_dim_l1": l1}


def eval_sums(model_config, eos_id: int, trainable, frozen, batch) -> dict[str, jax.Array]:
    """Weighted sums of the per-example metrics over a batch (batch["weight"]: 0 on padding)."""
    params = merge(trainable, frozen)
    logits, targets = teacher_forced_logits(params, model_config, batch, eos_id)
    values = example_metrics(model_config, logits, targets)
    weight = batch["weight"]
    sums = {k: jnp.sum(v * weight) for k, v in values.items() if k != "dim_accuracy"}
    sums["dim_accuracy"] = jnp.sum(values["dim_accuracy"] * weight[:, None], axis=0)
    for key, value in greedy_metrics(params, model_config, batch).items():
        sums[key] = jnp.sum(value * weight[:, None], axis=0)
    sums["count"] = jnp.sum(weight)
    return sums


def padded_batches(arrays: dict[str, np.ndarray], batch_size: int):
    """Fixed-size batches (one compiled shape) with a `weight` of 0 on the padding rows."""
    count = len(next(iter(arrays.values())))
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        take = np.concatenate([np.arange(start, stop), np.full(batch_size - (stop - start), start)])
        batch = {k: v[take] for k, v in arrays.items()}
        batch["weight"] = (np.arange(batch_size) < stop - start).astype(np.float32)
        yield batch
