"""OpenVLA speed, JAX vs the PyTorch reference, same weights, same inputs, same run.

  ./run.sh python benchmarks/model_speed.py [--preset=cpu] [--batch=4] [--repeats=5]

Two workloads (float32, LoRA r=32 alpha=16 on the Linears of the towers' blocks, projector and LLM
layers; not on lm_head and the patch-embedding convs, which OpenVLA's fine-tuning also adapts):
  train:  forward + backward of the action-token cross-entropy (teacher-forced 7 tokens,
          logits over the 256 action bins), gradients w.r.t. the LoRA factors only;
  sample: batched greedy 7-token action sampling: one prefill + KV-cached decode steps.
PyTorch: timm towers + transformers LlamaForCausalLM wrapped by PEFT (HF DynamicCache for
decoding, `logits_to_keep=1`); JAX: rl2vla_jax.rl.policy, jitted (compile excluded: warm-up).
Reports medians of --repeats timed runs after one warm-up run; JAX and PyTorch runs alternate.
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

from rl2vla_jax.convert import openvla_hf, peft_adapter
from rl2vla_jax.convert import torch_reference as ref
from rl2vla_jax.models import lora as lora_lib
from rl2vla_jax.policy import sampling

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
}


def interleaved_medians(jax_fn, torch_fn, repeats):
    """Alternate JAX and PyTorch runs so a shared machine's load hits both alike.

    Returns (median JAX s, median PyTorch s, median of the per-pair PyTorch/JAX ratios)."""
    jax_fn(), torch_fn()  # warm-up (compiles JAX; lets torch allocate)
    jax_times, torch_times = [], []
    for _ in range(repeats):
        for fn, times in ((jax_fn, jax_times), (torch_fn, torch_times)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratios = [t / j for j, t in zip(jax_times, torch_times, strict=True)]
    return statistics.median(jax_times), statistics.median(torch_times), statistics.median(ratios)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default="cpu", choices=sorted(PRESETS))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--prompt_len", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--scan_unroll", type=int, default=1, help="layers per scan step in the JAX model")
    args = parser.parse_args()
    torch.manual_seed(0)
    hf_config = ref.hf_config(**PRESETS[args.preset])
    model = ref.TorchOpenVLA(hf_config).eval()
    ref.randomise_(model, seed=0)
    lora_config = peft.LoraConfig(
        r=32,
        lora_alpha=16,
        target_modules=ref.lora_target_regex(head_and_patch_embed=False),
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

    # --- train step: loss over the 7 action tokens, grads of LoRA factors only ---
    mask_tree = lora_lib.lora_mask(params)
    trainable = jax.tree_util.tree_map(lambda x, m: x if m else None, params, mask_tree)
    frozen = jax.tree_util.tree_map(lambda x, m: None if m else x, params, mask_tree)

    def jax_loss(trainable, frozen):
        full = jax.tree_util.tree_map(
            lambda a, f: f if a is None else a, trainable, frozen, is_leaf=lambda x: x is None
        )
        logits, _ = sampling.action_logits_and_hidden(full, cfg, pixels, ids, mask, actions)
        log_p = jax.nn.log_softmax(logits, -1)
        return -jnp.take_along_axis(log_p, actions[..., None], -1).mean()

    jax_grad = jax.jit(jax.value_and_grad(jax_loss))
    jax_train = lambda: jax.block_until_ready(jax_grad(trainable, frozen))

    def torch_train():
        peft_model.zero_grad(set_to_none=True)
        embeds = torch_model.input_embeddings(t_pixels, torch.cat([t_ids, t_actions + begin], 1))
        hidden = torch_model.language_model.model(inputs_embeds=embeds).last_hidden_state
        start = args.prompt_len - 1 + cfg.num_patches
        logits = hidden[:, start : start + 7] @ torch_model.language_model.lm_head.weight[begin:end].T
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, 256), t_actions.reshape(-1))
        loss.backward()

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

    # Same greedy tokens from both before timing anything.
    same = np.array_equal(np.asarray(jax_sample()["tokens"]), torch_sample().numpy())
    rows = []
    for name, jax_fn, torch_fn in (("train step (fwd+bwd, LoRA)", jax_train, torch_train),
                                   ("sample 7 tokens (greedy)", jax_sample, torch_sample)):  # fmt: skip
        rows.append((name, *interleaved_medians(jax_fn, torch_fn, args.repeats)))
    n_params = lora_lib.count_params(params)
    n_lora = lora_lib.count_params(params, mask_tree)
    print(f"preset={args.preset} scan_unroll={args.scan_unroll} batch={b} prompt_len={args.prompt_len} patches={cfg.num_patches} "
          f"params={n_params / 1e6:.1f}M lora={n_lora / 1e6:.2f}M threads={torch.get_num_threads()} "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']} devices={jax.devices()} greedy tokens identical: {same}")  # fmt: skip
    print("| workload | JAX (s) | PyTorch (s) | PyTorch / JAX (median of paired runs) |")
    print("|---|---|---|---|")
    for name, t_jax, t_torch, ratio in rows:
        print(f"| {name} | {t_jax:.3f} | {t_torch:.3f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
