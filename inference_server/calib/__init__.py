"""Camera estimation from the photo's own pixels: line segments -> vanishing points -> focal length,
pitch, roll and the scene's horizontal axes (docs/CAMERA.md). Beside the analysis: it needs only the
photo and, optionally, its class labels."""

from .estimate import CameraEstimate, Lines, estimate_camera, photo_lines

__all__ = ["CameraEstimate", "Lines", "estimate_camera", "photo_lines"]
