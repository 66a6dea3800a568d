"""OpenVLA-7B roofline for one RL4VLA PPO iteration, from shapes alone (no weights needed).

    ./run.sh python benchmarks/roofline_7b.py [--batch=64 --horizon=80 --prompt_len=32]

Parameter counts come from `jax.eval_shape` of the real modules; FLOPs from XLA's cost
analysis of the lowered (not executed) policy step and PPO update at 7B shapes; memory from
the shapes of what the update holds. Times are what an H100 would need at a stated
utilisation: an estimate to plan with, not a measurement.
"""

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # repo root: `configs`
from configs import film_evi  # noqa: E402
from rl2vla_jax.models import critics
from rl2vla_jax.models.openvla import OpenVLA
from rl2vla_jax.models.trainable import split_trainable
from rl2vla_jax.policy import loading
from rl2vla_jax.train import builders, hparams
from rl2vla_jax.train import state as state_lib

H100_BF16_FLOPS = 989e12  # dense
H100_HBM_BYTES_PER_S = 3.35e12


def count(tree) -> int:
    return int(sum(np.prod(x.shape) for x in jax.tree.leaves(tree)))


def nbytes(tree) -> int:
    return int(sum(np.prod(x.shape) * jnp.dtype(x.dtype).itemsize for x in jax.tree.leaves(tree)))


def abstract_train_state(config, hp, model_cfg, critic):
    """The 7B TrainState as shapes only (models.init.init_params draws values on the host)."""
    size = model_cfg.image_size
    key = jax.random.PRNGKey(0)
    params = jax.eval_shape(
        lambda r: OpenVLA(model_cfg).init(r, jnp.zeros((1, size, size, 6)), jnp.ones((1, 3), jnp.int32))[
            "params"
        ],
        key,
    )
    trainable, frozen = split_trainable(params, config.trainable)
    critic_params = jax.eval_shape(
        lambda r: builders.init_critic_params(critic, model_cfg.llm.hidden_size, r, hp.uses_critic), key
    )
    actor_tx, critic_tx = builders.optimizers(config)
    return jax.eval_shape(
        lambda t, f, c: state_lib.create(t, f, c, actor_tx, critic_tx, key), trainable, frozen, critic_params
    )


def forward_flops(state, model_cfg, prompt_len: int) -> float:
    """2 x (kernel params x tokens they see) per module, plus attention's QK^T and AV."""
    flat = {
        "/".join(str(getattr(k, "key", k)) for k in path): leaf
        for path, leaf in jax.tree_util.tree_flatten_with_path(state.frozen)[0]
    }
    patches = model_cfg.num_patches
    llm_tokens = 1 + patches + prompt_len + 7
    tokens = {
        "vision/dino": patches + model_cfg.dino.num_prefix_tokens,
        "vision/siglip": patches,
        "projector": patches,
        "llm/layers": llm_tokens,
    }
    flops = 0.0
    for path, leaf in flat.items():
        if not path.endswith("kernel"):
            continue
        for prefix, count in tokens.items():
            if path.startswith(prefix):
                flops += 2.0 * np.prod(leaf.shape) * count
    for tower, n in ((model_cfg.dino, tokens["vision/dino"]), (model_cfg.siglip, patches)):
        flops += 4.0 * (tower.depth - 1) * n * n * tower.width
    llm = model_cfg.llm
    flops += 4.0 * llm.num_layers * llm_tokens * llm_tokens * llm.hidden_size
    flops += 2.0 * 7 * llm.hidden_size * model_cfg.n_action_bins  # the action-bin logits
    return flops


def saved_activation_bytes(model_cfg, minibatch: int, prompt_len: int) -> float:
    """What backward keeps per LLM layer under remat 'dots': the layer input and every matmul
    output (q, k, v, o, gate, up, down), bf16. The vision towers add ~15% at 224 px."""
    llm = model_cfg.llm
    tokens = minibatch * (1 + model_cfg.num_patches + prompt_len + 7)
    per_token = llm.hidden_size * 6 + llm.intermediate_size * 2
    return 1.15 * llm.num_layers * tokens * per_token * 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--horizon", type=int, default=80)
    parser.add_argument("--prompt_len", type=int, default=32)
    parser.add_argument("--mfu", type=float, default=0.4, help="assumed model-FLOPs utilisation")
    args = parser.parse_args()

    config = film_evi.get_config("paper")
    hp = hparams.rl_hparams(config)
    model_cfg = loading.model_config(config)
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
    B, T, L = args.batch, args.horizon, args.prompt_len
    forward = forward_flops(abstract_state, model_cfg, L)
    # Rollout, per env step: one prefill forward, then 6 cached decode steps that each read
    # every weight once (memory-bound at small batch).
    decode_bytes = 6 * nbytes(abstract_state.frozen)
    step_s = B * forward / (H100_BF16_FLOPS * args.mfu) + decode_bytes / H100_HBM_BYTES_PER_S
    rollout_s = T * step_s
    # Update: forward + backward (activation gradients ~ 2x forward; weight gradients only for
    # LoRA, negligible); remat "dots" keeps matmul outputs, so no second forward of the matmuls.
    update_flops = 3 * forward * B * T
    update_s = update_flops / (H100_BF16_FLOPS * args.mfu)
    opt_bytes = nbytes(abstract_state.actor_opt_state) + nbytes(abstract_state.critic_opt_state)
    activations = saved_activation_bytes(model_cfg, config.ppo.minibatch_size, L)
    rows = [
        ("base params (frozen)", f"{base / 1e9:.3f} B", f"{nbytes(abstract_state.frozen) / 2**30:.1f} GiB"),
        ("LoRA params (trainable)", f"{lora / 1e6:.1f} M", f"{lora / (base + lora):.2%} of the policy"),
        (
            "critic params (FiLM-EVI)",
            f"{critic_params / 1e6:.2f} M",
            f"plain head {plain / 1e6:.2f} M, EVI adds {(critic_params - plain) / 1e6:.2f} M",
        ),
        ("optimizer moments", f"{opt_bytes / 2**20:.0f} MiB", "AdamW, LoRA + critic only"),
        ("forward FLOPs per sample", f"{forward:.3e}", f"vision + projector + LLM over {L}-token prompts"),
        ("PPO update FLOPs (iteration)", f"{update_flops:.3e}", f"3 x forward x {B * T} samples"),
        (
            "saved activations (minibatch)",
            f"{activations / 2**30:.1f} GiB",
            f"minibatch {config.ppo.minibatch_size}, remat 'dots' (matmul outputs kept), bf16",
        ),
        (
            "update step memory",
            f"{(nbytes(abstract_state.frozen) + opt_bytes + activations) / 2**30:.1f} GiB",
            "weights + LoRA/critic moments + saved activations (+ LoRA grads, small)",
        ),
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
