"""Test-wide set-up. Two fake CPU devices exist so sharded code can be compared with
single-device code (must be set before JAX initialises its backend)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests that build the same programs twice (resume, 1 vs 2 devices) load them from this cache.
os.environ.setdefault(
    "JAX_COMPILATION_CACHE_DIR", os.path.join(os.path.expanduser("~"), ".cache", "rl2vla_jax", "xla")
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "1")
