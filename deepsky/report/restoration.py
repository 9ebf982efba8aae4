"""The gallery of restored images: input | network | classical restoration | truth, one object per row."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import figure
from deepsky.report.gallery import COMPOSITE_BANDS, SOFTENING_SIGMAS, sky_noise

ROWS = 6


def _planes(image, bands) -> np.ndarray:
    """The i, r, g planes (red, green, blue) of an (H, W, bands) image, or its first band three times."""
    if all(b in bands for b in COMPOSITE_BANDS):
        return np.asarray(image[..., [bands.index(b) for b in COMPOSITE_BANDS]], np.float64)
    return np.repeat(np.asarray(image[..., :1], np.float64), 3, axis=-1)


def plot_restoration_gallery(inputs, path) -> bool:
    """Rows of held-out objects; every panel of a row shares the input's asinh stretch, so they compare by eye."""
    gallery = inputs.gallery
    if gallery.get("outputs") is None or gallery.get("targets") is None or gallery.get("images") is None:
        return False
    shown = gallery["images"]
    if shown.ndim != 4:
        return False
    columns = [("degraded input", shown), ("network", gallery["outputs"])]
    if gallery.get("baseline_outputs") is not None:
        columns.append((inputs.baseline_name, gallery["baseline_outputs"]))
    columns.append(("truth", gallery["targets"]))
    bands = inputs.bands
    rows = min(ROWS, len(shown))
    with figure(path, (2.3 * len(columns), 2.3 * rows)) as fig:
        axes = fig.subplots(rows, len(columns), squeeze=False)
        for r in range(rows):
            softening = SOFTENING_SIGMAS * sky_noise(_planes(shown[r], bands))
            black = np.arcsinh(1.0 / SOFTENING_SIGMAS)
            top = np.percentile(np.arcsinh(_planes(gallery["targets"][r], bands) / softening), 99.8)
            for c, (title, images) in enumerate(columns):
                stretched = np.arcsinh(_planes(images[r], bands) / softening)
                picture = np.clip((stretched - black) / max(top - black, 1e-12), 0, 1)
                ax = axes[r, c]
                ax.imshow(picture, origin="lower", interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                ax.grid(False)
                if r == 0:
                    ax.set_title(title, fontsize=8)
    return True
