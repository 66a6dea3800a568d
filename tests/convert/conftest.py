"""Model tests are dominated by XLA compile time on small CPUs; LLVM's optimisation level
does not change float semantics, and level 0 roughly halves compile time. Only effective
when JAX has not initialised its backend yet (the root conftest sets the device count)."""

import os

_FLAG = "--xla_backend_optimization_level=0"
if _FLAG not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FLAG).strip()
