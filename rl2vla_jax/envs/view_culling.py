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


def boxes_outside_view(boxes, extrinsic, intrinsic, width: int, height: int, near: float) -> np.ndarray:
    """For each world-space box [[min xyz], [max xyz]] of `boxes` [N, 2, 3]: can it not appear in the image?

    `extrinsic` (3x4, world -> OpenCV camera: x right, y down, z forward) and `intrinsic` (3x3)
    are the camera's. The frustum is the intersection of five half-spaces, each linear in the
    point (the image bounds multiplied through by depth z, and z >= near); a box is outside when
    all 8 of its corners violate one of them. Conservative: a box that straddles a frustum corner
    is kept even when it misses the image.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 2, 3)
    pick = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)])  # min or max per axis
    corners = boxes[:, pick, [0, 1, 2]]  # [N, 8, 3]
    extrinsic, intrinsic = np.asarray(extrinsic, np.float64), np.asarray(intrinsic, np.float64)
    cam = corners @ extrinsic[:, :3].T + extrinsic[:, 3]
    x, y, z = cam[..., 0], cam[..., 1], cam[..., 2]
    u = intrinsic[0, 0] * x + intrinsic[0, 1] * y + intrinsic[0, 2] * z  # pixel x times z
    v = intrinsic[1, 1] * y + intrinsic[1, 2] * z  # pixel y times z
    half_spaces = np.stack(
        [u + MARGIN_PX * z, (width + MARGIN_PX) * z - u, v + MARGIN_PX * z, (height + MARGIN_PX) * z - v, z - near]
    )  # [5, N, 8]
    return np.any(np.all(half_spaces < 0, axis=2), axis=0)


class LinkCuller:
    """Hides, for one camera capture, the given render bodies that lie outside the camera's view."""

    def __init__(self, render_bodies, camera):
        self.render_bodies = list(render_bodies)
        self.camera = camera  # a sapien.render.RenderCameraComponent
        self.hidden_last_capture = 0

    def hide_out_of_view(self) -> None:
        # Called after the scene's render poses are updated, right before the capture.
        camera = self.camera
        boxes = [body.get_global_aabb_fast() for body in self.render_bodies]
        hidden = boxes_outside_view(
            boxes, camera.get_extrinsic_matrix(), camera.get_intrinsic_matrix(), camera.width, camera.height, camera.near
        )
        for body, hide in zip(self.render_bodies, hidden):
            body.visibility = 0.0 if hide else 1.0
        self.hidden_last_capture = int(hidden.sum())

    def show_all(self) -> None:
        for body in self.render_bodies:
            body.visibility = 1.0
