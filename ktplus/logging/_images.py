"""TensorBoard's augmentation preview: a few training samples as a trial's
model sees them after its data preparation.

One image summary per trial run (tag ``augmentation``): a grid with one row
per sample, the first column as the model sees it at inference
(normalized, not augmented) and the others three draws of its training-time
augmentation, each row scaled by its first image's range so contrast
changes stay visible. Written with tensorboard's protos and a PNG encoder
(Pillow), on any Keras backend.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from ktplus.logging._writer import RunWriter

PREVIEW_TAG = "augmentation"
PREVIEW_SUFFIX = ".ktplus-images"
#: Training-time draws shown per sample (after the inference column).
DRAWS = 3
#: Each cell is upscaled (nearest neighbour) to at least this many pixels a side.
MIN_CELL = 48
PAD = 2


def _as_display(image: np.ndarray) -> np.ndarray:
    """An (h, w, 1 or 3) image from an (h, w, c) one."""
    if image.shape[-1] in (1, 3):
        return image
    return image[..., :1]


def preview_grid(inference: np.ndarray, draws: list[np.ndarray]) -> np.ndarray:
    """A uint8 (H, W, 1 or 3) grid: one row per sample, the inference view
    then each training draw.

    >>> x = np.zeros((2, 8, 8, 1), "float32")
    >>> preview_grid(x, [x + 1.0]).shape  # 2 rows, 2 columns of 48-pixel cells, 2-pixel gaps
    (102, 102, 1)
    """
    n, h, w = inference.shape[:3]
    scale = max(1, -(-MIN_CELL // max(h, w)))
    columns = [inference, *draws]
    channels = _as_display(inference[0]).shape[-1]
    cell_h, cell_w = h * scale, w * scale
    grid = np.full((n * (cell_h + PAD) + PAD, len(columns) * (cell_w + PAD) + PAD, channels), 255, np.uint8)
    for row in range(n):
        ref = _as_display(inference[row]).astype("float64")
        lo, hi = float(ref.min()), float(ref.max())
        span = hi - lo if hi > lo else 1.0
        for col, images in enumerate(columns):
            cell = np.clip((_as_display(images[row]).astype("float64") - lo) / span, 0.0, 1.0)
            cell = np.repeat(np.repeat(cell, scale, axis=0), scale, axis=1)
            top, left = PAD + row * (cell_h + PAD), PAD + col * (cell_w + PAD)
            grid[top:top + cell_h, left:left + cell_w] = np.rint(cell * 255).astype(np.uint8)
    return grid


def _png(grid: np.ndarray) -> bytes:
    from PIL import Image

    image = Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def write_augmentation_preview(run_dir: str, model: Any, sample: np.ndarray) -> bool:
    """Writes the preview of ``model``'s augmentation of ``sample`` (a few
    raw training images) to ``run_dir``; False when the model augments
    nothing."""
    from tensorboard.compat.proto import summary_pb2

    from ktplus.hypermodels._prep import AUGMENTATION_LAYERS, prep_layers, preview

    if not any(layer.name in AUGMENTATION_LAYERS for layer in prep_layers(model)):
        return False
    inference = preview(model, sample, training=False)
    if inference.ndim != 4:
        return False
    grid = preview_grid(inference, [preview(model, sample, training=True) for _ in range(DRAWS)])
    image = summary_pb2.Summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=grid.shape[2],
                                      encoded_image_string=_png(grid))
    summary = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=PREVIEW_TAG, image=image)])
    with RunWriter(run_dir, filename_suffix=PREVIEW_SUFFIX) as writer:
        writer.summary(summary, step=0)
    return True
