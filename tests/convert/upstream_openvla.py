"""The upstream side of test_upstream_openvla.py; runs in the upstream OpenVLA environment.

  PYTHONPATH=.venv/upstream-openvla:. python tests/convert/upstream_openvla.py \
      build|adapter|predict|lora-count-7b ...

That environment (scripts/install_upstream_openvla.py) holds OpenVLA's own Hugging Face code
(`openvla_hf`: OpenVLAConfig, OpenVLAForActionPrediction, PrismaticProcessor) with the library
versions it pins (transformers 4.40.1, tokenizers 0.19.1, timm 0.9.10, peft 0.11.1). Everything
that matters is done by upstream code: building the model, `save_pretrained` (the sharded
safetensors layout and config.json), `from_pretrained`, the processor (image + prompt ids),
`predict_action` and `generate`, and PEFT's adapter files.

What we add: (1) tower sizes. Upstream creates each tower as
`timm.create_model(timm_id, pretrained=False, num_classes=0, img_size=..., act_layer=...)`,
i.e. full ViT-L / SO400M towers; we wrap `timm.create_model` so the checkpoint's
`timm_model_kwargs` (our config.json extension) override that id's defaults, which makes the
towers tiny. (2) Random weights (upstream's init is for fine-tuning only), with the LM-head rows
of non-action ids scaled down so that, as in a trained OpenVLA, upstream's unrestricted greedy
decoding picks action tokens.
"""

import argparse
import json
import os
import sys

import numpy as np
import timm
import torch
import transformers
from PIL import Image

from rl2vla_jax.convert import torch_reference

ACTION_BEGIN, ACTION_END = 31744, 32000  # vocab 32064 - pad 64 - 256 bins .. 32000
EMPTY_PIECE_ID = 29871


def check_environment():
    import openvla_hf

    if transformers.__version__ != "4.40.1" or timm.__version__ != "0.9.10":
        sys.exit(
            f"error: expected the upstream environment (transformers 4.40.1, timm 0.9.10), got "
            f"transformers {transformers.__version__}, timm {timm.__version__}; run ./run.sh setup"
        )
    return openvla_hf


def use_tower_sizes(timm_model_kwargs: list[dict], timm_ids: list[str]) -> None:
    """Make upstream's `timm.create_model(id, ...)` apply our per-id size overrides."""
    overrides = dict(zip(timm_ids, timm_model_kwargs))
    create = timm.create_model

    def create_with_sizes(model_name, *args, **kwargs):
        return create(model_name, *args, **kwargs, **overrides.get(model_name, {}))

    timm.create_model = create_with_sizes


def load_model(hf_dir: str, adapter_dir: str | None):
    from openvla_hf.modeling_prismatic import OpenVLAForActionPrediction

    with open(os.path.join(hf_dir, "config.json")) as f:
        config = json.load(f)
    use_tower_sizes(config["timm_model_kwargs"], config["timm_model_ids"])
    model = OpenVLAForActionPrediction.from_pretrained(hf_dir, torch_dtype=torch.float32).eval()
    if adapter_dir:
        import peft

        model = peft.PeftModel.from_pretrained(model, adapter_dir).eval()
    return model


def openvla_config(text_config: dict, **extra):
    """OpenVLAConfig as openvla/openvla-7b's config.json sets it, with `text_config` and `extra`."""
    from openvla_hf.configuration_prismatic import OpenVLAConfig

    return OpenVLAConfig(
        vision_backbone_id="dinosiglip-vit-so-224px",
        llm_backbone_id="llama2-7b-pure",
        arch_specifier="no-align+fused-gelu-mlp",
        use_fused_vision_backbone=True,
        image_resize_strategy="resize-naive",
        text_config=text_config,
        pad_token_id=32000,
        pad_to_multiple_of=64,
        **extra,
    )


def openvla_lora(rank: int, alpha: float):
    """LoRA as OpenVLA's fine-tuning script configures it."""
    import peft

    return peft.LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=0.0, target_modules="all-linear", init_lora_weights="gaussian"
    )


def build(args):
    from openvla_hf.modeling_prismatic import OpenVLAForActionPrediction
    from openvla_hf.processing_prismatic import PrismaticImageProcessor, PrismaticProcessor

    sizes = torch_reference.tiny_hf_config()  # the same odd, distinct sizes as our other tests
    text = {k: v for k, v in sizes["text_config"].items() if k not in ("torch_dtype", "model_type")}
    text.update(vocab_size=32064, pad_token_id=32000)
    with open(args.norm_stats) as f:
        norm_stats = json.load(f)
    image_size = sizes["image_sizes"][0]
    config = openvla_config(
        text,
        llm_max_length=2048,
        norm_stats=norm_stats,
        n_action_bins=256,
        # Not constructor arguments: PretrainedConfig stores them, overriding the 224 px defaults.
        image_sizes=[image_size, image_size],
        timm_model_kwargs=sizes["timm_model_kwargs"],
    )
    use_tower_sizes(config.timm_model_kwargs, config.timm_model_ids)
    torch.manual_seed(args.seed)
    model = OpenVLAForActionPrediction(config).eval()
    torch_reference.randomise_(model, seed=args.seed)
    with torch.no_grad():
        head = model.language_model.lm_head.weight
        head[:ACTION_BEGIN] *= 0.1
        head[ACTION_END:] *= 0.1
    model.save_pretrained(args.out, safe_serialization=True, max_shard_size="4MB")

    tokenizer = transformers.LlamaTokenizerFast(vocab_file=args.tokenizer, padding_side="right")
    tokenizer.add_special_tokens({"pad_token": "<PAD>"})
    image_processor = PrismaticImageProcessor(
        use_fused_vision_backbone=True,
        image_resize_strategy="resize-naive",
        input_sizes=[(3, image_size, image_size)] * 2,
        interpolations=["bicubic", "bicubic"],
        means=[(0.485, 0.456, 0.406), (0.5, 0.5, 0.5)],
        stds=[(0.229, 0.224, 0.225), (0.5, 0.5, 0.5)],
    )
    PrismaticProcessor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(args.out)


def adapter(args):
    import peft

    model = load_model(args.hf_dir, None)
    model = peft.get_peft_model(model, openvla_lora(rank=4, alpha=7))  # rank / alpha are the test's own
    gen = torch.Generator().manual_seed(args.seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:  # B = 0 at init would make the adapter a no-op
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    model.save_pretrained(args.out)


def predict(args):
    from openvla_hf.processing_prismatic import PrismaticImageProcessor, PrismaticProcessor

    model = load_model(args.hf_dir, args.adapter)
    processor = PrismaticProcessor(
        image_processor=PrismaticImageProcessor.from_pretrained(args.hf_dir),
        tokenizer=transformers.AutoTokenizer.from_pretrained(args.hf_dir),
    )
    results = []
    for image_path, instruction in zip(args.images, args.instructions):
        prompt = f"In: What action should the robot take to {instruction.lower()}?\nOut:"
        inputs = processor(prompt, Image.open(image_path).convert("RGB"))
        # openvla/openvla's predict_action (prismatic/extern/hf/modeling_prismatic.py) appends the
        # literal id 29871 when the prompt does not end with it, whatever the tokenizer. The
        # redistributed copy overwrites the last id instead (its one edited line), so we apply
        # upstream's rule here, before its code runs, and that edited branch is never taken.
        if int(inputs["input_ids"][0, -1]) != EMPTY_PIECE_ID:
            inputs["input_ids"] = torch.cat([inputs["input_ids"], torch.tensor([[EMPTY_PIECE_ID]])], dim=1)
            inputs["attention_mask"] = torch.cat(
                [inputs["attention_mask"], torch.ones((1, 1), dtype=torch.long)], 1
            )
        with torch.no_grad():
            action = model.predict_action(**inputs, unnorm_key=args.unnorm_key, do_sample=False)
            out = model.generate(
                **inputs, max_new_tokens=7, do_sample=False, output_logits=True, return_dict_in_generate=True
            )
        tokens = out.sequences[0, -7:].numpy()
        logits = torch.stack(out.logits, dim=1)[0].float()  # [7, vocab], before any processor
        log_p = torch.log_softmax(logits[:, ACTION_BEGIN:ACTION_END], dim=-1)
        entropies = -(log_p.exp() * log_p).sum(-1) / np.log(256)
        results.append(
            {
                "input_ids": inputs["input_ids"][0].tolist(),
                "pixel_values": inputs["pixel_values"][0].numpy().tolist(),
                "tokens": tokens.tolist(),
                "action": [float(a) for a in action],
                "logprobs": log_p[np.arange(7), tokens - ACTION_BEGIN].tolist(),
                "entropies": entropies.tolist(),
            }
        )
    with open(args.out, "w") as f:
        json.dump(results, f)


def lora_count_7b(args):
    """Upstream OpenVLA-7B on the meta device (no memory), LoRA as OpenVLA fine-tunes at r=32."""
    import accelerate
    import peft
    from openvla_hf.modeling_prismatic import OpenVLAForActionPrediction

    config = openvla_config({"vocab_size": 32064, "pad_token_id": 32000})
    with accelerate.init_empty_weights():
        model = OpenVLAForActionPrediction(config)
    base = sum(p.numel() for p in model.parameters())
    model = peft.get_peft_model(model, openvla_lora(rank=32, alpha=16))
    factors = {n: p.numel() for n, p in model.named_parameters() if ".lora_" in n}
    modules = sorted({n.split(".lora_")[0].removeprefix("base_model.model.") for n in factors})
    with open(args.out, "w") as f:
        json.dump({"base_params": base, "lora_params": sum(factors.values()), "lora_modules": modules}, f)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("build")
    p.add_argument("--out", required=True)
    p.add_argument("--tokenizer", required=True)
    p.add_argument("--norm_stats", required=True)
    p.add_argument("--seed", type=int, default=0)
    p = sub.add_parser("adapter")
    p.add_argument("--hf_dir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=1)
    p = sub.add_parser("predict")
    p.add_argument("--hf_dir", required=True)
    p.add_argument("--adapter")
    p.add_argument("--images", nargs="+", required=True)
    p.add_argument("--instructions", nargs="+", required=True)
    p.add_argument("--unnorm_key", required=True)
    p.add_argument("--out", required=True)
    p = sub.add_parser("lora-count-7b")
    p.add_argument("--out", required=True)
    args = parser.parse_args()
    check_environment()
    commands = {"build": build, "adapter": adapter, "predict": predict, "lora-count-7b": lora_count_7b}
    commands[args.command](args)


if __name__ == "__main__":
    main()
