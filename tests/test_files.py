"""files.replacing: a result file is replaced whole or left as it was."""

import json
import os

import pytest

from rl2vla_jax import files


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "r.json")
    files.write_json(path, {"a": 3})
    files.write_json(path, {"a": 7})
    assert json.load(open(path)) == {"a": 7}
    assert os.listdir(tmp_path) == ["r.json"]


def test_a_failed_write_keeps_the_previous_version(tmp_path):
    path = str(tmp_path / "summary.md")
    files.write_text(path, "iterations 0-4\n")
    with pytest.raises(OSError, match="disk full"):
        with files.replacing(path) as f:
            f.write("half of a new ")
            raise OSError("disk full")
    assert open(path).read() == "iterations 0-4\n"
    assert os.listdir(tmp_path) == ["summary.md"]
