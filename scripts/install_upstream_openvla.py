"""Install the upstream OpenVLA reference that the parity test runs as "not our code".

  python scripts/install_upstream_openvla.py DIR

OpenVLA's Hugging Face code (`prismatic/extern/hf/{configuration,modeling,processing}_prismatic.py`
in github.com/openvla/openvla) is not published on PyPI by its authors, and CI reaches only
package registries. The vla-arena 1.0.0 wheel on PyPI redistributes those three files under
`vla_arena/models/openvla/prismatic/extern/hf/`; we take them from that wheel (pinned by sha256)
into DIR/openvla_hf/, unchanged. Compared with openvla/openvla@c8f03f4 by AST (docstrings and type
annotations ignored) they are identical except one line of `predict_action`: when the prompt does
not end with token 29871 the copy overwrites the last id instead of appending 29871. The test's
prompts always end with 29871, so that branch never runs (the harness asserts it).

The library versions of scripts/upstream-openvla.txt go into DIR with --no-deps. The install is
atomic (built beside DIR, then renamed) and skipped when DIR's stamp matches the pins.
"""

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "vla-arena==1.0.0"
WHEEL_SHA256 = "02fa846e67e5427d5240ae158b0cf731fd2c434f061fccf15b7fbcc688ded694"
WHEEL_PREFIX = "vla_arena/models/openvla/prismatic/extern/hf/"
FILES = ("configuration_prismatic.py", "modeling_prismatic.py", "processing_prismatic.py")
PINS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "upstream-openvla.txt")


def stamp() -> str:
    with open(PINS, "rb") as f, open(__file__, "rb") as g:
        return hashlib.sha256(f.read() + g.read()).hexdigest()[:16]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args], check=True)


def install(target: str) -> None:
    stamp_file = os.path.join(target, ".stamp")
    if os.path.exists(stamp_file) and open(stamp_file).read() == stamp():
        return
    parent = os.path.dirname(os.path.abspath(target))
    os.makedirs(parent, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent, prefix=".upstream-openvla-") as tmp:
        staging = os.path.join(tmp, "env")
        pip("install", "--no-deps", "--target", staging, "-r", PINS)
        pip("download", "--no-deps", "--dest", tmp, WHEEL)
        (wheel,) = [os.path.join(tmp, n) for n in os.listdir(tmp) if n.endswith(".whl")]
        with open(wheel, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != WHEEL_SHA256:
            sys.exit(f"error: {WHEEL} wheel has sha256 {digest}, expected {WHEEL_SHA256}")
        package = os.path.join(staging, "openvla_hf")
        os.makedirs(package)
        with zipfile.ZipFile(wheel) as z:
            for name in FILES:
                with open(os.path.join(package, name), "wb") as out:
                    out.write(z.read(WHEEL_PREFIX + name))
        with open(os.path.join(package, "__init__.py"), "w") as f:
            f.write(f'"""OpenVLA\'s HF code, unchanged, from {WHEEL} ({WHEEL_PREFIX})."""\n')
        with open(os.path.join(staging, ".stamp"), "w") as f:
            f.write(stamp())
        if os.path.exists(target):
            shutil.rmtree(target)
        os.replace(staging, target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python scripts/install_upstream_openvla.py DIR")
    install(sys.argv[1])
    print(f"upstream OpenVLA reference ready in {sys.argv[1]}")
