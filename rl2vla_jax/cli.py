"""Shared pieces of the thin command-line entry points (absl flags + a config file).

Every entry point runs through `run(main)`, so all of them treat bad input alike: one
`error: ...` line on stderr, exit code 2, no traceback, nothing written. User errors are
`ConfigError` (rl2vla_jax.validation) or `FileNotFoundError`; a run that had to stop
(`RunStopped`: non-finite values, a failed save) is one line too, with exit code 1; anything
else is a bug and keeps its traceback.
"""

import contextlib
import glob
import os
import sys
from collections.abc import Callable, Iterator

from absl import app, flags, logging

from rl2vla_jax.validation import ConfigError, RunStopped


def one_line(err: BaseException | str) -> str:
    """The gist of an error as one line (config_flags wraps causes in tracebacks)."""
    text = str(err).replace("\\n", "\n").replace("\\'", "'").strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # repr()-quoted KeyError text
        text = text[1:-1]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if any(line.startswith("Traceback") for line in lines):
        lines = [lines[-1].split(": ", 1)[-1]]  # the raised exception's message
    return " ".join(lines) or type(err).__name__


def fail(message: str, code: int = 2) -> None:
    """Print one line on stderr and exit non-zero (bad input, nothing written)."""
    print(f"error: {message}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit, not sys.exit: after a failed orbax restore, tensorstore threads still call into
    # asyncio during interpreter teardown and print an "Event loop is closed" traceback under
    # the one-line error (seen in ~1 of 5 runs). Every writer here is atomic and its cleanup
    # ran while the exception unwound, so there is nothing left for teardown to do.
    os._exit(code)


def _check_config_path(argv: list[str]) -> None:
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--config=") else None
        if arg == "--config" and i + 1 < len(argv):
            value = argv[i + 1]
        if value is not None:
            path = value.split(":", 1)[0]
            if not os.path.isfile(path):
                folder = os.path.dirname(path) or "."
                known = sorted(os.path.relpath(p) for p in glob.glob(os.path.join(folder, "*.py")))
                known = [p for p in known if not os.path.basename(p).startswith("_")]
                hint = f"; existing configs: {', '.join(known)}" if known else ""
                fail(f"config file {path} does not exist{hint}")


def _parse_flags(argv: list[str]) -> list[str]:
    _check_config_path(argv)
    try:
        return flags.FLAGS(argv)
    except (flags.Error, AttributeError, KeyError, ValueError, OSError) as err:
        fail(one_line(err))


def no_positional_arguments(argv: list[str]) -> None:
    if len(argv) > 1:
        raise ConfigError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")


@contextlib.contextmanager
def reading(what: str) -> Iterator[None]:
    """Errors while reading a file the user named (a corrupt checkpoint, a broken download)
    become one ConfigError line that names it; wrap only the reading, so that a bug in what
    follows keeps its traceback."""
    try:
        yield
    except (ConfigError, FileNotFoundError):
        raise
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"{what}: {type(err).__name__}: {one_line(err)}") from None


# PIL modes whose convert("RGB") is what OpenVLA's processor does to them; 16-bit and float
# images ("I;16", "I", "F") would be clipped to 8 bits, silently, so they are refused.
IMAGE_MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "1", "CMYK", "YCbCr")


def read_image(path: str):
    """A PIL image from `path`, or a one-line error naming the file and what is accepted."""
    from PIL import Image, UnidentifiedImageError

    if not os.path.isfile(path):
        raise ConfigError(f"--image={path} does not exist; pass an image file (PNG, JPEG, ...)")
    try:
        image = Image.open(path)
        image.load()
    except (UnidentifiedImageError, OSError) as err:
        raise ConfigError(
            f"--image={path} is not a readable image ({one_line(err)}); pass a PNG or JPEG file"
        ) from None
    if image.mode not in IMAGE_MODES:
        raise ConfigError(
            f"--image={path} has PIL mode {image.mode!r} (more than 8 bits or not a colour image); "
            f"pass an 8-bit image in one of the modes {', '.join(IMAGE_MODES)}"
        )
    return image


def run(main: Callable[[list[str]], None]) -> None:
    """app.run with flag and config errors reported as one line and exit code 2. No entry
    point takes positional arguments: a stray word is usually a flag missing its `--`."""

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # orbax and others log every save step at INFO
        try:
            no_positional_arguments(argv)
            main(argv)
        except (ConfigError, FileNotFoundError) as err:
            fail(one_line(err))
        except RunStopped as err:  # not bad input: the run started and had to stop
            fail(one_line(err), code=1)

    app.run(guarded, flags_parser=_parse_flags)
