"""Model tests are dominated by XLA compile time on small CPUs; LLVM's optimisation level
does not change float semantics, and level 0 roughly halves compile time. Only effective
when JAX has not initialised its backend yet (the root conftest sets the device count)."""

import os

_FLAG = "--xla_backend_optimization_level=0"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()


import copy  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import pytest  # noqa: E402

NORM_STATS = {
    "bridge_orig": {
        "action": {
            "q01": [-0.03, -0.05, -0.04, -0.1, -0.12, -0.2, 0.0],
            "q99": [0.03, 0.05, 0.04, 0.1, 0.12, 0.2, 1.0],
            "mask": [True, True, True, True, True, True, False],
        }
    },
    "fractal": {"action": {"q01": [-1.0] * 7, "q99": [1.0] * 7}},
}


def run_cli(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300)


def convert_cli(hf_dir: str, out: str, *extra: str) -> str:
    """Convert an HF checkpoint to float32 with the CLI; returns `out`."""
    result = run_cli(
        "rl2vla_jax.convert_openvla", f"--hf_dir={hf_dir}", f"--out={out}", "--dtype=float32", *extra
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out


class TinyReference:
    """A random tiny OpenVLA in PyTorch, saved in the HF layout, plus a PEFT-adapted copy."""

    def __init__(self, root):
        import peft
        import torch

        from rl2vla_jax.convert import torch_reference as ref
        from rl2vla_jax.data import prompt

        torch.manual_seed(0)
        self.root = root
        self.hf_config = ref.tiny_hf_config(NORM_STATS)
        self.model = ref.TorchOpenVLA(self.hf_config).eval()
        ref.randomise_(self.model, seed=0)
        self.tokenizer_path = prompt.tiny_tokenizer()
        self.hf_dir = str(root / "hf")
        ref.save_hf_checkpoint(
            self.model, self.hf_config, self.hf_dir, num_shards=3, tokenizer=self.tokenizer_path
        )

        lora_config = peft.LoraConfig(
            r=4,
            lora_alpha=7,
            lora_dropout=0.0,
            target_modules=ref.lora_target_regex(),
            init_lora_weights="gaussian",
        )
        self.peft_model = peft.get_peft_model(copy.deepcopy(self.model), lora_config).eval()
        gen = torch.Generator().manual_seed(1)
        with torch.no_grad():
            for name, p in self.peft_model.named_parameters():
                if "lora_" in name:  # B = 0 at init would make the test vacuous
                    p.copy_(0.1 * torch.randn(p.shape, generator=gen))
        self.adapter_dir = str(root / "adapter")
        self.peft_model.save_pretrained(self.adapter_dir)
        with open(f"{self.adapter_dir}/adapter_config.json") as f:
            self.adapter_config = json.load(f)

    def convert(self, name: str, *extra: str) -> str:
        return convert_cli(self.hf_dir, str(self.root / name), *extra)


@pytest.fixture(scope="session")
def tiny_reference(tmp_path_factory):
    pytest.importorskip("timm")
    pytest.importorskip("peft")
    return TinyReference(tmp_path_factory.mktemp("openvla_ref"))


@pytest.fixture(scope="session")
def converted(tiny_reference):
    return tiny_reference.convert("jax_base")


@pytest.fixture(scope="session")
def converted_lora(tiny_reference):
    return tiny_reference.convert("jax_lora", f"--adapter={tiny_reference.adapter_dir}")
