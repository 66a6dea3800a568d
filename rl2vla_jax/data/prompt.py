"""Prompt ids for OpenVLA from a Llama SentencePiece tokenizer.

Prompt: "In: What action should the robot take to {instruction.lower()}?\\nOut:", encoded with
BOS; then, as upstream OpenVLA's `predict_action` does (openvla/openvla,
prismatic/extern/hf/modeling_prismatic.py), the literal id 29871 ("▁" in Llama-2) is appended
unless the ids already end with it, whatever the tokenizer: the model was trained with that id
before the action tokens, so a tokenizer's own "▁" id would be a different input. Only a model
whose vocabulary cannot hold id 29871 (our tiny test models, where upstream's code would index
out of range) falls back to the tokenizer's "▁" id. Batches are RIGHT-padded: ids [B, L] +
mask [B, L].

`tiny_tokenizer()` trains a small Llama-style SentencePiece model (BPE, byte fallback, so "\\n"
is <0x0A> = id 13 as in Llama) offline on built-in robot instructions, for tiny test models.
"""

from __future__ import annotations

import itertools
import os
import tempfile

import numpy as np
import sentencepiece as spm

from rl2vla_jax.validation import ConfigError

EMPTY_PIECE = "\u2581"
OPENVLA_EMPTY_ID = 29871  # upstream's literal, not looked up in the tokenizer
TINY_VOCAB_SIZE = 384  # + 64 padding rows = the tiny model's 448-row vocabulary


def prompt_text(instruction: str) -> str:
    return f"In: What action should the robot take to {instruction.lower()}?\nOut:"


def load_tokenizer(path: str) -> spm.SentencePieceProcessor:
    """A tokenizer.model file, or a directory holding one."""
    if os.path.isdir(path):
        path = os.path.join(path, "tokenizer.model")
    return spm.SentencePieceProcessor(model_file=path)


def empty_token_id(tokenizer: spm.SentencePieceProcessor, vocab_size: int) -> int:
    """The id appended after "Out:" for a model with `vocab_size` rows (see the module doc)."""
    return OPENVLA_EMPTY_ID if vocab_size > OPENVLA_EMPTY_ID else tokenizer.piece_to_id(EMPTY_PIECE)


def encode_prompt(tokenizer: spm.SentencePieceProcessor, instruction: str, *, vocab_size: int) -> list[int]:
    ids = [tokenizer.bos_id(), *tokenizer.encode(prompt_text(instruction))]
    empty_id = empty_token_id(tokenizer, vocab_size)
    if ids[-1] != empty_id:
        ids.append(empty_id)
    return ids


def pad_id(tokenizer: spm.SentencePieceProcessor) -> int:
    """OpenVLA's <PAD> is the first id after the SentencePiece vocabulary (32000)."""
    return tokenizer.get_piece_size()


def encode_prompts(
    tokenizer: spm.SentencePieceProcessor,
    instructions: list[str],
    max_len: int | None = None,
    *,
    vocab_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Right-padded int32 ids [B, max_len] and bool mask; max_len defaults to the longest.
    `vocab_size` is the model's (`llm.vocab_size`): it decides the empty token's id."""
    rows = [encode_prompt(tokenizer, text, vocab_size=vocab_size) for text in instructions]
    longest = max(len(r) for r in rows)
    max_len = longest if max_len is None else max_len
    if longest > max_len:
        # An error, not a longer pad: a new prompt length would recompile every jitted step.
        text = instructions[max(range(len(rows)), key=lambda i: len(rows[i]))]
        raise ConfigError(
            f"instruction {text!r} needs {longest} prompt tokens, more than the {max_len} the model pads to; "
            f"raise --config.model.max_prompt_tokens to at least {longest}"
        )
    ids = np.full((len(rows), max_len), pad_id(tokenizer), np.int32)
    mask = np.zeros((len(rows), max_len), bool)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = row
        mask[i, : len(row)] = True
    return ids, mask


_VERBS = ["put", "place", "move", "pick up", "stack", "set", "drop", "push"]
_OBJECTS = [
    "the carrot", "the eggplant", "the spoon", "the green cube", "the red block", "the banana",
    "the yellow sponge", "the cup", "the bottle", "the apple", "the coke can", "the blue towel",
]  # fmt: skip
_PLACES = [
    "on the plate", "in the basket", "on the towel", "into the sink", "on the table",
    "next to the bowl", "in the drawer", "on top of the box",
]  # fmt: skip


def robot_corpus() -> list[str]:
    """Prompts of many robot instructions (deterministic)."""
    lines = []
    for verb, obj, place in itertools.product(_VERBS, _OBJECTS, _PLACES):
        lines.append(prompt_text(f"{verb} {obj} {place}"))
    lines += [f"{i} {i * 7 % 100} digits, Numbers: {i / 8:.3f}!" for i in range(100)]
    return lines


def train_tiny_tokenizer(out_path: str, vocab_size: int = TINY_VOCAB_SIZE) -> str:
    """Train a Llama-like SentencePiece BPE model on `robot_corpus()`; atomic write to out_path."""
    out_dir = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w") as f:
            f.write("\n".join(line.replace("\n", " ") for line in robot_corpus()))
        spm.SentencePieceTrainer.train(
            input=corpus,
            model_prefix=os.path.join(tmp, "sp"),
            model_type="bpe",
            vocab_size=vocab_size,
            byte_fallback=True,
            character_coverage=1.0,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            split_digits=True,
            unk_id=0,
            bos_id=1,
            eos_id=2,
            pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
        os.replace(os.path.join(tmp, "sp.model"), out_path)
    return out_path


def tiny_tokenizer(cache_dir: str | None = None) -> str:
    """Path of the cached tiny tokenizer.model (trained on first use)."""
    cache_dir = cache_dir or os.path.join(os.path.expanduser("~"), ".cache", "rl2vla_jax")
    path = os.path.join(cache_dir, f"tiny_tokenizer_{TINY_VOCAB_SIZE}.model")
    if not os.path.exists(path):
        train_tiny_tokenizer(path)
    return path
