"""The HTML gallery a search ends with: the best-scored cutouts, ranked, for inspection by eye."""

from __future__ import annotations

import base64
import io
from html import escape
from pathlib import Path

import numpy as np

from deepsky.report.gallery import colour_composite
from deepsky.report.html import write_html

THUMBNAIL_PIXELS = 160  # shown size of each cutout (pixels on screen, nearest-neighbour upscaled)


def _png(rgb: np.ndarray) -> str:
    from matplotlib.image import imsave

    buffer = io.BytesIO()
    imsave(buffer, np.ascontiguousarray(rgb[::-1]), format="png")  # row 0 at the bottom, as the sky is drawn
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def write_candidate_gallery(path, candidates: dict, bands, positive: str, title: str, run: str = "") -> Path:
    """Write a self-contained HTML page of ranked candidates (colour composites where g, r, i exist, else grey).

    ``candidates`` holds ``images`` (N, H, W, bands), ``ids``, ``scores`` (probability of
    ``positive``) and ``ranks``. The page is written to a temporary name and renamed.
    """
    path = Path(path)
    cards = []
    for image, ident, score, rank in zip(candidates["images"], candidates["ids"], candidates["scores"],
                                         candidates["ranks"]):
        picture = _png(colour_composite(np.asarray(image, float), list(bands)))
        cards.append(f'<figure><img alt="candidate {escape(str(ident))}" src="data:image/png;base64,{picture}">'
                     f"<figcaption>#{int(rank)} &middot; id {escape(str(ident))}<br>"
                     f"p_{escape(positive)} = {float(score):.4f}</figcaption></figure>")
    composite = "i, r, g as red, green, blue" if all(b in bands for b in ("g", "r", "i")) else f"band {bands[0]}"
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; background: #fafafa; }}
main {{ display: flex; flex-wrap: wrap; gap: 12px; }}
figure {{ margin: 0; background: white; padding: 6px; border: 1px solid #ddd; text-align: center; }}
img {{ width: {THUMBNAIL_PIXELS}px; height: {THUMBNAIL_PIXELS}px; image-rendering: pixelated; display: block; }}
figcaption {{ font-size: 0.8em; margin-top: 4px; }}
</style></head><body>
<h1>{escape(title)}</h1>
<p>{len(cards)} cutouts, highest score first ({escape(composite)}, asinh stretch; north/up as stored).
Run: {escape(run)}</p>
<main>
{''.join(cards)}
</main></body></html>
"""
    return write_html(path, page)
