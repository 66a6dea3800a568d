import pytest

from rl2vla_jax.envs import rendering


def test_missing_vulkan_gives_install_instructions(monkeypatch):
    monkeypatch.setenv("VK_ICD_FILENAMES", "/nonexistent/lvp_icd.json")
    with pytest.raises(rendering.NoVulkanDeviceError, match="mesa-vulkan-drivers"):
        rendering.require_vulkan()


@pytest.mark.sim
def test_lavapipe_is_found_by_run_sh():
    assert rendering.vulkan_icd_files()
