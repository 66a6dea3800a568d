"""The folders are the architecture: each package imports only from the packages below it
(STYLE.md). Checked on the source (every import statement, those inside functions too), so a
lazy import cannot hide a dependency."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1] / "rl2vla_jax"

# package -> the rl2vla_jax packages (top-level names) it may import besides itself.
ALLOWED = {
    "validation": set(),
    "files": set(),
    "video": set(),
    "mesh": {"validation"},
    "models": set(),
    "rl": set(),
    "data": {"validation"},
    # The config sections every job shares (ml_collections), above the model's preset names.
    "config_base": {"models", "validation"},
    "envs": {"data", "validation", "video", "cli"},
    # The checkpoint module reaches the converter for PEFT adapters only (with_lora).
    "checkpoints": {"models", "data", "validation", "convert"},
    "policy": {"models", "rl", "data", "checkpoints", "validation", "files"},
    "convert": {"models", "data", "checkpoints", "validation"},
    "train": {
        "models",
        "rl",
        "data",
        "policy",
        "checkpoints",
        "mesh",
        "envs",
        "validation",
        "video",
        "cli",
        "config_base",
        "files",
    },
    "sft": {"models", "data", "policy", "checkpoints", "mesh", "validation", "cli", "config_base"},
    "evaluation": {
        "data",
        "policy",
        "checkpoints",
        "envs",
        "validation",
        "video",
        "cli",
        "config_base",
        "files",
    },
}
# `cli` (one error line, exit 2) sits just above `validation`; packages with a __main__ use it.
ENTRY_POINTS = {
    "cli",
    "eval",
    "predict_action",
    "convert_openvla",
    "collect_demos",
    "results",
    "measure_overhead",
    "diagnostics",
    "merge_lora",
}


def _imported_packages(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "rl2vla_jax":  # from rl2vla_jax import checkpoints, mesh
                modules = [f"rl2vla_jax.{alias.name}" for alias in node.names]
        else:
            continue
        names |= {m.split(".")[1] for m in modules if m.startswith("rl2vla_jax.")}
    return names


def _package_of(path: pathlib.Path) -> str:
    return path.relative_to(ROOT).parts[0].removesuffix(".py")


def test_every_module_belongs_to_a_known_package():
    unknown = {_package_of(p) for p in ROOT.rglob("*.py")} - set(ALLOWED) - ENTRY_POINTS - {"__init__"}
    assert not unknown, f"add these to ALLOWED with their dependencies: {sorted(unknown)}"


@pytest.mark.parametrize("path", sorted(ROOT.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_follow_the_layering(path):
    package = _package_of(path)
    if package in ENTRY_POINTS or package == "__init__":
        return  # thin entry points may use anything
    illegal = _imported_packages(path) - ALLOWED[package] - {package}
    assert not illegal, f"{path.relative_to(ROOT)} ({package}/) imports {sorted(illegal)}"


def test_the_rules_the_redesign_promised():
    """Spelled out: evaluation never imports the RL trainer; training never the converter."""
    for package, forbidden in (("evaluation", "train"), ("train", "convert"), ("sft", "train")):
        for path in (ROOT / package).rglob("*.py"):
            assert forbidden not in _imported_packages(path), path


def test_no_module_over_400_lines():
    exempt = {"envs/put_on_plate.py"}  # the ManiSkill task file
    long = {
        str(p.relative_to(ROOT)): n
        for p in ROOT.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400 and str(p.relative_to(ROOT)) not in exempt
    }
    assert not long, long
