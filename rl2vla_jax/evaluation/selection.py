"""Which settings and results an evaluation covers (no simulator or JAX import: checked first)."""

from __future__ import annotations

import json
import os
import re

from rl2vla_jax.envs import suites
from rl2vla_jax.validation import ConfigError


def select_settings(suite: str, names: str | None) -> list[suites.SuiteEntry]:
    """Comma-separated setting names of `suite`, or all of them; unknown names -> one line."""
    if suite not in suites.SUITES:
        raise ConfigError(f"unknown suite {suite!r}; suites: {', '.join(sorted(suites.SUITES))}")
    known = list(suites.SUITES[suite])
    wanted = [n.strip() for n in names.split(",") if n.strip()] if names else known
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} of suite {suite!r}; settings: {', '.join(known)}"
        )
    try:
        return [suites.get_setting(suite, name) for name in dict.fromkeys(wanted)]
    except suites.Rl4vlaUnavailable as err:
        raise ConfigError(str(err)) from None


def parse_seeds(text: str | None, default) -> tuple[int, ...]:
    if not text:
        return tuple(int(s) for s in default)
    try:
        return tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ConfigError(f"--seeds={text!r} must be comma-separated integers, e.g. 0,1,2") from None


def is_results_folder(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "evaluation.json"))


def load_results(folder: str, names) -> dict[str, dict]:
    """The stored per-setting results of a results folder, for the given setting names."""
    results = {}
    for name in names:
        path = os.path.join(folder, "settings", f"{name}.json")
        if os.path.isfile(path):
            with open(path) as f:
                results[name] = json.load(f)
    return results


def default_out(checkpoint: str, suite: str) -> str:
    """results/<checkpoint path as one name>_<suite>: the same command resumes the same folder."""
    name = checkpoint if checkpoint == "random" else os.path.relpath(os.path.abspath(checkpoint))
    return os.path.join("results", re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") + f"_{suite}")
