"""Skip drawing the robot links a camera cannot see (CPU rendering only).

On Mesa's lavapipe a frame costs about in proportion to the triangles drawn, and the Panda's
visual meshes are ~145k triangles: without the robot a 64 px frame of the `ours` scene takes
~7 ms instead of ~20 ms. The renderer draws every link, in view or not; at the CPU preset's close
camera about 3 of the 11 links (the upper arm, ~41k triangles) are outside the image in a typical
frame. A link whose bounding box lies wholly outside the view frustum produces no pixel, so
hiding it for the capture leaves the image bit-identical (tests/envs/test_view_culling.py checks
this frame by frame) and the simulation untouched: only render visibility changes.
"""

from __future__ import annotations

import numpy as np

# A box must clear the image's border by this many pixels to be skipped: rasterisation decides
# edge pixels by sample position, and the bounding box comes from float32 transforms.
MARGIN_PX = 2.0


def box_outside_view(box, extrinsic, intrinsic, width: int, height: int, near: float) -> bool:
    """True when the world-space box [[min xyz], [max xyz]] cannot appear in the image.

    `extrinsic` (3x4, world -> OpenCV camera: x right, y down, z forward) and `intrinsic` (3x3)
    are the camera's. The frustum is the intersection of five half-spaces, each linear in the
    point (the image bounds multiplied through by depth z, and z >= near); the box is outside when
    all 8 of its corners violate one of them. Conservative: a box that straddles a frustum corner
    is kept even when it misses the image.
    """
    lo, hi = np.asarray(box, np.float64)
    corners = np.stack(np.meshgrid(*zip(lo, hi), indexing="ij"), axis=-1).reshape(8, 3)
    extrinsic, intrinsic = np.asarray(extrinsic, np.float64), np.asarray(intrinsic, np.float64)
    cam = corners @ extrinsic[:, :3].T + extrinsic[:, 3]
    z = cam[:, 2]
    u = intrinsic[0, 0] * cam[:, 0] + intrinsic[0, 1] * cam[:, 1] + intrinsic[0, 2] * z  # pixel x times z
    v = intrinsic[1, 1] * cam[:, 1] + intrinsic[1, 2] * z  # pixel y times z
    half_spaces = (
        u + MARGIN_PX * z,
        (width + MARGIN_PX) * z - u,
        v + MARGIN_PX * z,
        (height + MARGIN_PX) * z - v,
        z - near,
    )
    return any(bool(np.all(h < 0)) for h in half_spaces)


class LinkCuller:
    """Hides, for one camera capture, the given render bodies that lie outside the camera's view."""

    def __init__(self, render_bodies, camera):
        self.render_bodies = list(render_bodies)
        self.camera = camera  # a sapien.render.RenderCameraComponent
        self.hidden_last_capture = 0

    def hide_out_of_view(self) -> None:
        # Called after the scene's render poses are updated, right before the capture.
        camera = self.camera
        extrinsic, intrinsic = camera.get_extrinsic_matrix(), camera.get_intrinsic_matrix()
        self.hidden_last_capture = 0
        for body in self.render_bodies:
            hide = box_outside_view(
                body.get_global_aabb_fast(), extrinsic, intrinsic, camera.width, camera.height, camera.near
            )
            body.visibility = 0.0 if hide else 1.0
            self.hidden_last_capture += hide

    def show_all(self) -> None:
        for body in self.render_bodies:
            body.visibility = 1.0
