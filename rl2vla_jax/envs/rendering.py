"""Checks that SAPIEN can render: without a GPU it needs Mesa's lavapipe (a CPU Vulkan driver)."""

from __future__ import annotations

import glob
import os

INSTALL_HINT = (
    "No Vulkan device for SAPIEN's renderer. Without a GPU, install Mesa's CPU Vulkan driver (lavapipe), "
    "Mesa >= 24: on Debian bookworm add 'deb http://deb.debian.org/debian bookworm-backports main' to "
    "/etc/apt/sources.list.d/ and run 'apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1', "
    "then set VK_ICD_FILENAMES to /usr/share/vulkan/icd.d/lvp_icd*.json and XDG_RUNTIME_DIR. "
    "./run.sh does all of this for you (run commands through it)."
)

_ICD_DIRS = ("/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d", "/usr/local/share/vulkan/icd.d")


class NoVulkanDeviceError(RuntimeError):
    pass


def vulkan_icd_files() -> list[str]:
    """ICD manifests the Vulkan loader will consider (VK_ICD_FILENAMES wins when set)."""
    explicit = os.environ.get("VK_ICD_FILENAMES") or os.environ.get("VK_DRIVER_FILES")
    if explicit:
        return [path for path in explicit.split(os.pathsep) if os.path.exists(path)]
    return sorted(path for directory in _ICD_DIRS for path in glob.glob(os.path.join(directory, "*.json")))


def require_vulkan() -> None:
    """Raise one clear error when no Vulkan driver is installed; otherwise do nothing."""
    if not vulkan_icd_files():
        raise NoVulkanDeviceError(INSTALL_HINT)
