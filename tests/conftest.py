"""Test-wide set-up. Two fake CPU devices exist so sharded code can be compared with
single-device code (must be set before JAX initialises its backend)."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=2")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
