"""Shared by the tests of `experiments/diagnostics/` scripts: load a script as a module, and write
the part of an evaluation folder (`eval --out`) the scripts read."""

import importlib.util
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_script(name: str):
    path = os.path.join(ROOT, "experiments", "diagnostics", f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_eval(folder, seeds: dict, setting: str = "train") -> str:
    """`folder`/settings/<setting>.json with per-seed episode lists; returns the folder."""
    os.makedirs(folder / "settings")
    (folder / "settings" / f"{setting}.json").write_text(json.dumps({"setting": setting, "seeds": seeds}))
    return str(folder)
