"""MP4 video (H.264) of image sequences, through imageio-ffmpeg, whose wheel ships the ffmpeg
encoder (nothing to install on the system). yuv420p and the index at the front (+faststart):
the files play in any browser and start before they have fully loaded.
"""
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

FPS_RANGE = (1, 60)
MAX_SIDE = 2048
QUALITY = "18"  # x264's constant rate factor: 18 looks lossless for these flat images, 23 is its default


def frame_size(shape: tuple[int, int], side: int | None) -> tuple[int, int]:
    """(width, height) with the longer side `side` (or as is), both even: H.264 in yuv420p needs that."""
    h, w = shape
    scale = side / max(h, w) if side else 1.0
    return max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)


def mp4(frames: Sequence[np.ndarray], fps: float = 12, side: int | None = None,
        progress: Callable[[int, int], None] | None = None) -> bytes:
    """uint8 [H, W, 3] frames -> MP4 bytes, each frame scaled to `side` (nearest for enlarging:
    pixels stay crisp; Lanczos for shrinking)."""
    import imageio_ffmpeg
    if not len(frames):
        raise ValueError("a video needs at least one frame")
    if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
        raise ValueError(f"frames per second must be from {FPS_RANGE[0]} to {FPS_RANGE[1]} (not {fps:g})")
    if side is not None and not 2 <= side <= MAX_SIDE:
        raise ValueError(f"video size must be from 2 to {MAX_SIDE} pixels (not {side})")
    size = frame_size(frames[0].shape[:2], side)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "video.mp4"
        writer = imageio_ffmpeg.write_frames(str(path), size, fps=fps, codec="libx264", pix_fmt_in="rgb24",
                                             pix_fmt_out="yuv420p", macro_block_size=1, quality=None,
                                             output_params=["-crf", QUALITY, "-movflags", "+faststart"])
        writer.send(None)  # start ffmpeg
        try:
            for i, frame in enumerate(frames):
                image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
                if image.size != size:
                    enlarge = size[0] > image.size[0]
                    image = image.resize(size, Image.NEAREST if enlarge else Image.LANCZOS)
                writer.send(np.ascontiguousarray(np.asarray(image.convert("RGB"))))
                if progress:
                    progress(i + 1, len(frames))
        finally:
            writer.close()
        return path.read_bytes()


def round_trip(frames: Sequence[np.ndarray]) -> list[np.ndarray]:
    """There and back again, for a seamless loop."""
    frames = list(frames)
    return frames + frames[-2:0:-1]


def read_frames(path: Path | str) -> tuple[dict, list[np.ndarray]]:
    """(ffmpeg's metadata, the frames): to check a video."""
    import imageio_ffmpeg
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return meta, [np.frombuffer(f, dtype=np.uint8).reshape(h, w, 3) for f in reader]
