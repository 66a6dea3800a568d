"""OpenVLA speed, JAX vs the PyTorch reference, same weights, same inputs, same run.

  ./run.sh python benchmarks/model_speed.py [--preset=cpu|px64] [--batch=4] [--repeats=5] [--json=PATH]

Presets: `cpu` (224 px, 14 px patches, narrow layers) and `px64` (SFT's 64 px camera, 8 px patches,
1.8M base params, 48-token prompts). Two workloads (float32, LoRA r=32 alpha=16 on the Linears of
the towers' blocks, projector and LLM layers; with --all_targets also on lm_head and the
patch-embedding convs, as OpenVLA's fine-tuning does):
  train:  forward + backward of the LoRA PPO loss: clipped surrogate on the summed log-prob of
          the teacher-forced 7 action tokens (logits over the 256 bins) plus the clipped Huber
          value loss of a value head on the last prompt position's hidden state; gradients
          w.r.t. the LoRA factors and the value head;
  sample: batched greedy 7-token action sampling: one prefill + KV-cached decode steps.
PyTorch: timm towers + transformers LlamaForCausalLM wrapped by PEFT (HF DynamicCache for
decoding, `logits_to_keep=1`); JAX: rl2vla_jax.policy.sampling, jitted (compile excluded: warm-up).
Reports medians of --repeats timed runs after one warm-up run; JAX and PyTorch runs alternate.

Also the JAX forward alone (the same loss, no gradient) for the backward/forward ratio, and the
train step's CPU MFU: FLOPs of the step from XLA's cost_analysis (compiled once more with every
layer unrolled, because cost_analysis counts a scan's body once; elementwise ops included)
divided by the JAX step time, over the best float32 [2048, 2048] matmul rate measured in the
same run (before and after the workloads). --json=PATH writes every figure.
"""

import os

# On a shared, oversubscribed CPU, OpenMP's default busy-waiting makes torch's small matmuls
# 10-20x slower (measured: 5 ms vs 0.3 ms for [4,384]x[384,1024]); passive waiting is fair.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import statistics
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import peft  # noqa: E402
import torch  # noqa: E402
from matmul_peak import matmul_peak_gflops  # noqa: E402

from rl2vla_jax import files
from rl2vla_jax.convert import openvla_hf, peft_adapter
from rl2vla_jax.convert import torch_reference as ref
from rl2vla_jax.models import lora as lora_lib
from rl2vla_jax.policy import sampling
from rl2vla_jax.rl import entropy as entropy_lib
from rl2vla_jax.rl import losses

PRESETS = {
    # ~1 s per training step on 2 CPU cores: real patch count (224 px / 14 = 256), narrow layers.
    "cpu": dict(
        dino={"embed_dim": 192, "depth": 4, "num_heads": 3, "mlp_ratio": 4.0, "patch_size": 14},
        siglip={"embed_dim": 192, "depth": 4, "num_heads": 3, "mlp_ratio": 3.7362, "patch_size": 14},
        text={
            "hidden_size": 384,
            "intermediate_size": 1024,
            "num_hidden_layers": 4,
            "num_attention_heads": 6,
        },
        image_size=224,
        vocab_size=32064,
    ),
    # SFT's camera size: 64 px, 8 px patches (64 patches), 1.8M base params, 48-token prompts.
    "px64": dict(
        dino={"embed_dim": 96, "depth": 4, "num_heads": 3, "mlp_ratio": 4.0, "patch_size": 8},
        siglip={"embed_dim": 96, "depth": 4, "num_heads": 3, "mlp_ratio": 4.0, "patch_size": 8},
        text={
            "hidden_size": 128,
            "intermediate_size": 256,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
        },
        image_size=64,
        vocab_size=448,
    ),
}
PROMPT_LEN = {"cpu": 24, "px64": 48}
CLIP_EPS, HUBER_DELTA = 0.2, 10.0  # the config's ppo.clip_eps (also the value clip) and ppo.huber_delta
CRITIC_WIDTH = 64  # the value head's hidden layer


def interleaved_medians(jax_fn, torch_fn, repeats):
    """Alternate JAX and PyTorch runs so a shared machine's load hits both alike.

    Returns (median JAX s, median PyTorch s, median of the per-pair PyTorch/JAX ratios) and
    the per-run times (JAX list, PyTorch list)."""
    jax_fn(), torch_fn()  # warm-up (compiles JAX; lets torch allocate)
    jax_times, torch_times = [], []
    for _ in range(repeats):
        for fn, times in ((jax_fn, jax_times), (torch_fn, torch_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratios = [t / j for j, t in zip(jax_times, torch_times, strict=True)]
    medians = statistics.median(jax_times), statistics.median(torch_times), statistics.median(ratios)
    return medians, (jax_times, torch_times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--prompt_len", type=int, default=None, help="default: 24 (cpu), 48 (px64)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scan_unroll", type=int, default=1, help="layers per scan step in the JAX model")
    parser.add_argument("--json", default=None, help="write the figures to this JSON file")
    parser.add_argument(
        "--all_targets",
        action="store_true",
        help="LoRA on lm_head and the patch-embedding convs too (OpenVLA's fine-tuning, the default config)",
    )
    args = parser.parse_args()
    if args.prompt_len is None:
        args.prompt_len = PROMPT_LEN[args.preset]
    peak_before = matmul_peak_gflops()
    torch.manual_seed(0)
    hf_config = ref.hf_config(**PRESETS[args.preset])
    model = ref.TorchOpenVLA(hf_config).eval()
    ref.randomise_(model, seed=0)
    lora_config = peft.LoraConfig(
        r=32,
        lora_alpha=16,
        target_modules=ref.lora_target_regex(head_and_patch_embed=args.all_targets),
        init_lora_weights="gaussian",
    )
    peft_model = peft.get_peft_model(model, lora_config)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.02)
    with tempfile.TemporaryDirectory() as tmp:
        base = ref.TorchOpenVLA(hf_config)
        base.load_state_dict(
            {k.replace("base_layer.", ""): v for k, v in model.state_dict().items() if "lora_" not in k}
        )
        ref.save_hf_checkpoint(base, hf_config, f"{tmp}/hf", num_shards=2)
        peft_model.save_pretrained(f"{tmp}/adapter")
        cfg = openvla_hf.model_config_from_hf(hf_config, "float32")
        params = openvla_hf.load_params(f"{tmp}/hf", cfg)
        params, cfg = peft_adapter.import_adapter(f"{tmp}/adapter", params, cfg)
        cfg = cfg.replace(scan_unroll=args.scan_unroll)
    params = jax.tree_util.tree_map(jnp.asarray, params)
    torch_model = peft_model.base_model.model

    rng = np.random.default_rng(0)
    b, size = args.batch, cfg.image_size
    pixels = rng.normal(size=(b, size, size, 6)).astype(np.float32)
    ids = np.concatenate([np.ones((b, 1)), rng.integers(3, 300, size=(b, args.prompt_len - 1))], 1).astype(
        np.int32
    )
    mask = np.ones_like(ids, bool)
    actions = rng.integers(0, 256, size=(b, 7)).astype(np.int32)
    t_pixels = torch.from_numpy(pixels.transpose(0, 3, 1, 2).copy())
    t_ids, t_actions = torch.from_numpy(ids).long(), torch.from_numpy(actions).long()
    begin, end = cfg.action_token_begin, cfg.action_token_end

    # --- train step: the LoRA PPO loss, grads of LoRA factors and the critic ---
    # Clipped surrogate on the summed 7-token log-prob (rl2vla_jax.rl.losses) plus the clipped
    # Huber value loss of a value head on the hidden state at the last prompt position (as
    # update.minibatch_loss); the PyTorch side computes the same equations on the same weights.
    old_log_prob = (rng.normal(size=b) - 38.0).astype(np.float32)
    advantage = rng.normal(size=b).astype(np.float32)
    old_value, returns = rng.normal(size=(2, b)).astype(np.float32)
    width = cfg.llm.hidden_size
    head = {
        "w1": (rng.normal(size=(width, CRITIC_WIDTH)) / np.sqrt(width)).astype(np.float32),
        "b1": np.zeros(CRITIC_WIDTH, np.float32),
        "w2": (rng.normal(size=(CRITIC_WIDTH, 1)) / np.sqrt(CRITIC_WIDTH)).astype(np.float32),
        "b2": np.zeros(1, np.float32),
    }
    mask_tree = lora_lib.lora_mask(params)
    trainable = jax.tree_util.tree_map(lambda x, m: x if m else None, params, mask_tree)
    frozen = jax.tree_util.tree_map(lambda x, m: None if m else x, params, mask_tree)

    def loss_of(model_cfg):
        def loss(trainable, critic, frozen):
            full = jax.tree_util.tree_map(
                lambda a, f: f if a is None else a, trainable, frozen, is_leaf=lambda x: x is None
            )
            logits, hidden = sampling.action_logits_and_hidden(full, model_cfg, pixels, ids, mask, actions)
            log_prob = entropy_lib.action_log_prob(logits, actions)
            value = (jnp.tanh(hidden @ critic["w1"] + critic["b1"]) @ critic["w2"] + critic["b2"])[:, 0]
            policy_loss = losses.ppo_policy_loss(log_prob, old_log_prob, advantage, CLIP_EPS)
            return policy_loss + losses.value_loss(value, old_value, returns, CLIP_EPS, HUBER_DELTA)

        return loss

    jax_loss = loss_of(cfg)
    jax_head = jax.tree_util.tree_map(jnp.asarray, head)

    jax_grad = jax.jit(jax.value_and_grad(jax_loss, argnums=(0, 1)))
    jax_train = lambda: jax.block_until_ready(jax_grad(trainable, jax_head, frozen))
    jax_forward = jax.jit(jax_loss)
    jax_fwd = lambda: jax.block_until_ready(jax_forward(trainable, jax_head, frozen))

    # XLA's cost_analysis counts a scan's body once: count FLOPs on a copy with every layer unrolled.
    unrolled = loss_of(cfg.replace(scan_unroll=max(cfg.llm.num_layers, cfg.dino.depth, cfg.siglip.depth)))
    step_flops = lambda fn: jax.jit(fn).lower(trainable, jax_head, frozen).compile().cost_analysis()["flops"]
    train_flops = step_flops(jax.value_and_grad(unrolled, argnums=(0, 1)))
    forward_flops = step_flops(unrolled)

    t_head = {k: torch.from_numpy(v).requires_grad_() for k, v in head.items()}
    t_old_log_prob, t_advantage, t_old_value, t_returns = map(
        torch.from_numpy, (old_log_prob, advantage, old_value, returns)
    )

    def torch_huber(x):
        small = x.abs() <= HUBER_DELTA
        return torch.where(small, 0.5 * x**2, HUBER_DELTA * (x.abs() - 0.5 * HUBER_DELTA))

    def torch_loss():
        embeds = torch_model.input_embeddings(t_pixels, torch.cat([t_ids, t_actions + begin], 1))
        hidden = torch_model.language_model.model(inputs_embeds=embeds).last_hidden_state
        start = args.prompt_len - 1 + cfg.num_patches
        logits = hidden[:, start : start + 7] @ torch_model.language_model.lm_head.weight[begin:end].T
        log_prob = logits.log_softmax(-1).gather(-1, t_actions[..., None])[..., 0].sum(-1)
        ratio = torch.exp(log_prob - t_old_log_prob)
        clipped = ratio.clamp(1 - CLIP_EPS, 1 + CLIP_EPS) * t_advantage
        policy_loss = -torch.minimum(ratio * t_advantage, clipped).mean()
        value = (torch.tanh(hidden[:, start] @ t_head["w1"] + t_head["b1"]) @ t_head["w2"] + t_head["b2"])[
            :, 0
        ]
        value_clipped = t_old_value + (value - t_old_value).clamp(-CLIP_EPS, CLIP_EPS)
        value_loss = torch.maximum(torch_huber(t_returns - value), torch_huber(t_returns - value_clipped))
        return policy_loss + value_loss.mean()

    def torch_train():
        peft_model.zero_grad(set_to_none=True)
        for p in t_head.values():
            p.grad = None
        torch_loss().backward()

    @torch.no_grad()
    def torch_forward():
        return torch_loss()

    # --- batched greedy sampling ---
    key = jax.random.key(0)
    jax_sample = lambda: jax.block_until_ready(
        sampling.sample_actions(params, cfg, pixels, ids, mask, key, 0.0)
    )

    @torch.no_grad()
    def torch_sample():
        lm = torch_model.language_model
        out = lm(
            inputs_embeds=torch_model.input_embeddings(t_pixels, t_ids), use_cache=True, logits_to_keep=1
        )
        tokens = []
        for step in range(7):
            token = out.logits[:, -1, begin:end].argmax(-1)
            tokens.append(token)
            if step < 6:
                out = lm(
                    input_ids=(token + begin)[:, None], past_key_values=out.past_key_values, use_cache=True
                )
        return torch.stack(tokens, 1)

    # Same greedy tokens and the same PPO loss from both before timing anything.
    same = np.array_equal(np.asarray(jax_sample()["tokens"]), torch_sample().numpy())
    loss_difference = abs(float(jax_forward(trainable, jax_head, frozen)) - float(torch_forward()))
    rows, runs = [], []
    for name, jax_fn, torch_fn in (("train step (fwd+bwd, LoRA)", jax_train, torch_train),
                                   ("forward only (same loss)", jax_fwd, torch_forward),
                                   ("sample 7 tokens (greedy)", jax_sample, torch_sample)):  # fmt: skip
        medians, times = interleaved_medians(jax_fn, torch_fn, args.repeats)
        rows.append((name, *medians))
        runs.append(times)
    peak = max(peak_before, matmul_peak_gflops())
    (_, t_train, torch_t_train, train_ratio), (_, t_fwd, torch_t_fwd, _) = rows[:2]
    _, t_sample, torch_t_sample, sample_ratio = rows[2]
    n_params = lora_lib.count_params(params)
    n_lora = lora_lib.count_params(params, mask_tree)
    print(f"preset={args.preset} scan_unroll={args.scan_unroll} batch={b} prompt_len={args.prompt_len} patches={cfg.num_patches} "
          f"params={n_params / 1e6:.1f}M lora={n_lora / 1e6:.2f}M threads={torch.get_num_threads()} "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} devices={jax.devices()} greedy tokens identical: {same}")  # fmt: skip
    print("| workload | JAX (s) | PyTorch (s) | PyTorch / JAX (median of paired runs) |")
    print("|---|---|---|---|")
    for name, t_jax, t_torch, ratio in rows:
        print(f"| {name} | {t_jax:.3f} | {t_torch:.3f} | {ratio:.2f}x |")
    update_gflops = train_flops / t_train / 1e9
    figures = {
        "train_step_speedup": train_ratio,
        "sampling_speedup": sample_ratio,
        "update_mfu": update_gflops / peak,
        "matmul_peak_gflops": peak,
        "update_gflops": update_gflops,
        "train_step_flops": train_flops,
        "forward_flops": forward_flops,
        "jax_train_step_s": t_train,
        "jax_forward_s": t_fwd,
        "jax_backward_forward_ratio": t_train / t_fwd,
        "torch_train_step_s": torch_t_train,
        "torch_forward_s": torch_t_fwd,
        "torch_backward_forward_ratio": torch_t_train / torch_t_fwd,
        "jax_sample_s": t_sample,
        "torch_sample_s": torch_t_sample,
        "preset": args.preset,
        "batch": b,
        "prompt_len": args.prompt_len,
        "scan_unroll": args.scan_unroll,
        "all_targets": args.all_targets,
        "repeats": args.repeats,
        "params": n_params,
        "lora_params": n_lora,
        "greedy_tokens_identical": bool(same),
        "ppo_loss_abs_difference": loss_difference,
        "jax_train_step_runs_s": runs[0][0],
        "torch_train_step_runs_s": runs[0][1],
        "jax_sample_runs_s": runs[2][0],
        "torch_sample_runs_s": runs[2][1],
        "load_average": os.getloadavg(),
    }
    print(f"JAX train step {t_train * 1e3:.0f} ms = {t_train / t_fwd:.2f}x its forward ({t_fwd * 1e3:.0f} ms); "
          f"{train_flops / 1e9:.2f} GFLOP (XLA cost_analysis) -> {update_gflops:.1f} GFLOP/s = "
          f"{100 * figures['update_mfu']:.1f}% of the {peak:.1f} GFLOP/s fp32 matmul peak; "
          f"load average {os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.json:
        files.write_json(args.json, figures)


if __name__ == "__main__":
    main()
