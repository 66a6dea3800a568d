import pytest

from rl2vla_jax.envs.rendering import vulkan_icd_files


def pytest_collection_modifyitems(config, items):
    # Simulator tests need a Vulkan driver; ./run.sh installs lavapipe and points at it.
    if vulkan_icd_files():
        return
    skip = pytest.mark.skip(
        reason="no Vulkan driver: run the tests through ./run.sh, which installs lavapipe"
    )
    for item in items:
        if "sim" in item.keywords:
            item.add_marker(skip)
