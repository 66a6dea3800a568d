"""OpenVLA-7B roofline for one RL4VLA PPO iteration, from shapes alone (no weights needed).

    ./run.sh python benchmarks/roofline_7b.py [--batch=64 --horizon=80 --prompt_len=32]

Parameter counts come from `jax.eval_shape` of the real modules; FLOPs from XLA's cost
analysis of the lowered (not executed) policy step and PPO update at 7B shapes; memory from
the shapes of what the update holds. Times are what an H100 would need at a stated
utilisation: an estimate to plan with, not a measurement.
"""

import argparse
import functools

import jax
import jax.numpy as jnp
import numpy as np

from configs import film_evi
from rl2vla_jax.models import critics
from rl2vla_jax.models.openvla import OpenVLA
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import state as state_lib
from rl2vla_jax.train import update as update_lib

H100_BF16_FLOPS = 989e12  # dense
H100_HBM_BYTES_PER_S = 3.35e12


def count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def nbytes(tree) -> int:
    return int(sum(np.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def abstract_train_state(config, hp, model_cfg, critic):
    """The 7B TrainState as shapes only (policy.init_params draws values on the host)."""
    size = model_cfg.image_size
    key = jax.random.PRNGKey(0)
    params = jax.eval_shape(
        lambda r: OpenVLA(model_cfg).init(r, jnp.zeros((1, size, size, 6)), jnp.ones((1, 3), jnp.int32))[
            "params"
        ],
        key,
    )
    trainable, frozen = state_lib.split_trainable(params, config.trainable)
    critic_params = jax.eval_shape(
        lambda r: builders.init_critic_params(critic, model_cfg.llm.hidden_size, r, hp.uses_critic), key
    )
    actor_tx, critic_tx = builders.optimizers(config)
    return jax.eval_shape(
        lambda t, f, c: state_lib.create(t, f, c, actor_tx, critic_tx, key), trainable, frozen, critic_params
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=80)
    parser.add_argument("--prompt_len", type=int, default=32)
    parser.add_argument("--mfu", type=float, default=0.4, help="assumed model-FLOPs utilisation")
    args = parser.parse_args()

    config = film_evi.get_config("paper")
    hp = hparams.rl_hparams(config)
    model_cfg = builders.model_config(config)
    critic = builders.make_critic(hp, config)
    abstract_state = abstract_train_state(config, hp, model_cfg, critic)
    base, lora = count(abstract_state.frozen), count(abstract_state.trainable)
    critic_params = count(abstract_state.critic)
    plain = count(
        jax.eval_shape(
            lambda: critics.PlainCritic((512, 128)).init(
                jax.random.PRNGKey(0), jnp.zeros((1, 4096)), jnp.zeros((1,))
            )
        )
    )
    S, B, T, L = model_cfg.image_size, args.batch, args.horizon, args.prompt_len
    images = jax.ShapeDtypeStruct((B, S, S, 3), jnp.uint8)
    ids = jax.ShapeDtypeStruct((B, L), jnp.int32)
    mask = jax.ShapeDtypeStruct((B, L), jnp.bool_)
    act = jax.jit(functools.partial(update_lib.policy_step, hp, model_cfg, critic))
    act_cost = act.lower(abstract_state, images, ids, mask, jax.random.PRNGKey(0), 1.0).cost_analysis()
    rollout = update_lib.Rollout(
        images=jax.ShapeDtypeStruct((T, B, S, S, 3), jnp.uint8),
        prompt_ids=jax.ShapeDtypeStruct((T, B, L), jnp.int32),
        prompt_mask=jax.ShapeDtypeStruct((T, B, L), jnp.bool_),
        tokens=jax.ShapeDtypeStruct((T, B, 7), jnp.int32),
        log_probs=jax.ShapeDtypeStruct((T, B), jnp.float32),
        values=jax.ShapeDtypeStruct((T, B), jnp.float32),
        rewards=jax.ShapeDtypeStruct((T, B), jnp.float32),
        dones=jax.ShapeDtypeStruct((T, B), jnp.float32),
        bootstrap_value=jax.ShapeDtypeStruct((B,), jnp.float32),
        group_ids=jax.ShapeDtypeStruct((B,), jnp.int32),
    )
    actor_tx, critic_tx = builders.optimizers(config)
    learn = jax.jit(functools.partial(update_lib.update, hp, model_cfg, critic, actor_tx, critic_tx, 10.0))
    learn_cost = learn.lower(abstract_state, rollout).cost_analysis()
    act_flops, learn_flops = float(act_cost["flops"]), float(learn_cost["flops"])
    # Decoding reads every weight once per generated token: 6 cached steps per action.
    decode_bytes = 6 * nbytes(abstract_state.frozen)
    rollout_s = T * (act_flops / (H100_BF16_FLOPS * args.mfu) + decode_bytes / H100_HBM_BYTES_PER_S)
    update_s = learn_flops / (H100_BF16_FLOPS * args.mfu)
    opt_bytes = nbytes(abstract_state.actor_opt_state) + nbytes(abstract_state.critic_opt_state)
    rows = [
        ("base params (frozen)", f"{base / 1e9:.3f} B", f"{nbytes(abstract_state.frozen) / 2**30:.1f} GiB"),
        ("LoRA params (trainable)", f"{lora / 1e6:.1f} M", f"{lora / (base + lora):.2%} of the policy"),
        (
            "critic params (FiLM-EVI)",
            f"{critic_params / 1e6:.2f} M",
            f"plain head {plain / 1e6:.2f} M, EVI adds {(critic_params - plain) / 1e6:.2f} M",
        ),
        ("optimizer moments", f"{opt_bytes / 2**20:.0f} MiB", "AdamW, LoRA + critic only"),
        ("policy step FLOPs (batch)", f"{act_flops:.3e}", f"{act_flops / B:.3e} per env step"),
        ("PPO update FLOPs (iteration)", f"{learn_flops:.3e}", f"{learn_flops / (B * T):.3e} per sample"),
        (
            "H100 rollout policy time",
            f"{rollout_s:.0f} s",
            f"at {args.mfu:.0%} MFU + weight reads per decode",
        ),
        ("H100 update time", f"{update_s:.0f} s", f"at {args.mfu:.0%} MFU"),
        ("iterations for 1.5M env steps", f"{1.5e6 / (B * T):.0f}", f"{B} envs x {T} steps each"),
        (
            "H100 GPU time, policy + update",
            f"{1.5e6 / (B * T) * (rollout_s + update_s) / 3600:.1f} h",
            "simulator time excluded; RL4VLA: ~42 h on one A100 in all",
        ),
    ]
    print("| quantity | value | note |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
