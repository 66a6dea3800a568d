"""Files written whole or not at all: every result file (JSON, CSV, Markdown, npz) goes
through a temporary sibling renamed over the target once complete, so a kill mid-write
leaves the previous version (or nothing), never half a file."""

import contextlib
import json
import os


@contextlib.contextmanager
def replacing(path: str, mode: str = "w", **open_kwargs):
    """Open a temporary sibling of `path` for writing; rename it over `path` on success, remove
    it on error."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, mode, **open_kwargs) as f:
            yield f
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json(path: str, data, indent: int = 1) -> None:
    with replacing(path) as f:
        json.dump(data, f, indent=indent)


def write_text(path: str, text: str) -> None:
    with replacing(path) as f:
        f.write(text)
