"""Galleries of test objects, the worst mistakes and random examples: cutouts as gri composites, series as curves."""

from __future__ import annotations

import numpy as np

from deepsky.report.canvas import figure

COMPOSITE_BANDS = ("i", "r", "g")  # -> red, green, blue, as SDSS colour images
SOFTENING_SIGMAS = 3.0  # asinh softening in units of the sky noise: noise stays dark, faint wings show
BORDER = 4  # pixels of each edge that measure the sky noise
COLUMNS = 4
MAX_STRIP_BANDS = 4  # cutouts of 2-4 bands that make no gri composite are shown band by band


def colour_composite(image: np.ndarray, bands) -> np.ndarray:
    """An RGB picture of one cutout: ``i, r, g`` as red, green, blue, asinh-stretched.

    Each band is divided by a softening of three times its sky noise (the
    median absolute deviation of the border pixels, as a Gaussian sigma),
    stretched with ``arcsinh`` (linear near the noise, logarithmic for the
    bright core, after Lupton et al. 2004), then the three planes are
    scaled together, from +1 sigma of sky (black) to the brightest pixels
    (white), so colours survive. Cutouts without g, r and i come out
    grey from their first band.

    Parameters
    ----------
    image : ndarray
        (H, W, bands) fluxes (any linear unit, e.g. nanomaggies).
    bands : sequence of str
        Band names in the order of the last axis.

    Returns
    -------
    ndarray
        (H, W, 3) floats in [0, 1].

    Examples
    --------
    >>> rgb = colour_composite(np.random.default_rng(0).normal(size=(16, 16, 5)), "ugriz")
    >>> rgb.shape, float(rgb.min()) >= 0.0, float(rgb.max()) <= 1.0
    ((16, 16, 3), True, True)
    >>> colour_composite(np.ones((8, 8, 2)), ["F150W", "F200W"]).shape
    (8, 8, 3)
    """
    bands = list(bands)
    if all(b in bands for b in COMPOSITE_BANDS):
        planes = image[..., [bands.index(b) for b in COMPOSITE_BANDS]]
    else:
        planes = np.repeat(image[..., :1], 3, axis=-1)
    planes = np.asarray(planes, dtype=np.float64)
    stretched = np.arcsinh(planes / (SOFTENING_SIGMAS * sky_noise(planes)))
    # black below +1 sigma of sky: faint sources stand out of the speckle of three noisy bands
    black = np.arcsinh(1.0 / SOFTENING_SIGMAS)
    top = np.percentile(stretched, 99.8)  # a few saturated core pixels, not the whole star
    if top <= black:
        return np.zeros_like(stretched)
    return np.clip((stretched - black) / (top - black), 0.0, 1.0)


def sky_noise(image: np.ndarray, width: int = BORDER) -> np.ndarray:
    """Per-band sky noise (image units) of one (H, W, bands) cutout from its border pixels.

    1.4826 times the median absolute deviation: the Gaussian sigma, robust
    to a neighbour that touches the edge.
    """
    mask = np.ones(image.shape[:2], dtype=bool)
    mask[width:-width, width:-width] = False
    border = image[mask]
    mad = np.median(np.abs(border - np.median(border, axis=0)), axis=0)
    noise = 1.4826 * mad
    # a noiseless (simulated or masked) border would divide by zero
    fallback = np.maximum(np.abs(image).reshape(-1, image.shape[-1]).max(axis=0) * 1e-3, 1e-12)
    return np.where(noise > 0, noise, fallback)


def plot_gallery(inputs, path, which: str, title: str) -> bool:
    """A 4-column grid of the cutouts listed in ``gallery/<which>`` of ``evaluation.h5``.

    Each panel is titled with the true class, p of the positive class and
    the r magnitude; wrong calls are titled in red. Returns False when the
    gallery or its cutouts are missing.

    Parameters
    ----------
    inputs : ReportInputs
    path : path
        PNG to write.
    which : str
        ``worst`` or ``examples``.
    title : str
        The figure's title.
    """
    indices = [int(i) for i in inputs.gallery.get(which, []) if inputs.gallery_image(int(i)) is not None]
    if not indices:
        return plot_series_gallery(inputs, path, which, title)
    bands = inputs.bands or [f"band{k}" for k in range(inputs.gallery_image(indices[0]).shape[-1])]
    colour = all(b in bands for b in COMPOSITE_BANDS)
    strip = not colour and 1 < len(bands) <= MAX_STRIP_BANDS
    columns = 2 if strip else COLUMNS
    rows = int(np.ceil(len(indices) / columns))
    panel_height = 4.2 / len(bands) if strip else 2.1
    with figure(path, (8.4, (panel_height + 0.5) * rows + 0.6)) as fig:
        axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
        for ax in axes:
            ax.set_axis_off()
        for ax, index in zip(axes, indices):
            image = inputs.gallery_image(index)
            picture = band_strip(image) if strip else colour_composite(image, bands)
            ax.imshow(picture, origin="lower", interpolation="nearest")
            text, wrong = _caption(inputs, index)
            ax.set_title(text, fontsize=8.5, color="tab:red" if wrong else "black")
        how = ("gri composite (i, r, g as red, green, blue)" if colour
               else f"bands {', '.join(bands)} side by side, each in grey" if strip else f"band {bands[0]} in grey")
        separator = "\n" if strip else " "  # the strip's caption is long: two lines
        fig.suptitle(f"{title}; {how},{separator}asinh stretch; red titles are wrong calls", fontsize=10)
    return True


def band_strip(image: np.ndarray) -> np.ndarray:
    """The bands of one (H, W, bands) cutout side by side, each in grey with its own stretch; (H, bands x W, 3)."""
    planes = [colour_composite(image[..., [k]], ["band"]) for k in range(image.shape[-1])]
    gap = np.ones((image.shape[0], 1, 3))
    return np.concatenate([part for plane in planes for part in (plane, gap)][:-1], axis=1)


def plot_series_gallery(inputs, path, which: str, title: str) -> bool:
    """The series (light curves, views) of the test objects in ``gallery/<which>``, one panel per object and input.

    Returns False when no series are stored (cutout tasks draw images instead).
    """
    indices = [int(i) for i in inputs.gallery.get(which, []) if inputs.gallery_series(int(i)) is not None]
    if not indices:
        return False
    names = list(inputs.gallery_series(indices[0]))
    columns = 2 * len(names) if len(names) > 1 else COLUMNS
    per_row = columns // len(names)
    rows = int(np.ceil(len(indices) / per_row))
    with figure(path, (2.6 * columns, 1.9 * rows + 0.6)) as fig:
        axes = np.atleast_2d(fig.subplots(rows, columns, squeeze=False))
        for ax in axes.ravel():
            ax.set_axis_off()
        for k, index in enumerate(indices):
            series = inputs.gallery_series(index)
            text, wrong = _caption(inputs, index)
            for j, name in enumerate(names):
                ax = axes[k // per_row, (k % per_row) * len(names) + j]
                ax.set_axis_on()
                values = np.asarray(series[name])
                ax.plot(np.arange(len(values)), values[:, 0] if values.ndim == 2 else values, ".", ms=2,
                        color="tab:red" if wrong else "black")
                ax.set_xticks([])
                ax.tick_params(labelsize=7)
                ax.set_title(f"{text.splitlines()[0]}\n{name.replace('_', ' ')}" if len(names) > 1 else text,
                             fontsize=7.5, color="tab:red" if wrong else "black")
        fig.suptitle(f"{title}; red: wrong calls", fontsize=10)
    return True


def _caption(inputs, index):
    label = int(inputs.labels[index])
    probabilities = inputs.probabilities[index]
    # the metrics' rule: two-class tasks call the positive class at p >= 0.5
    called = int(probabilities[1] >= 0.5) if inputs.binary else int(np.argmax(probabilities))
    wrong = called != label
    lines = [f"true {inputs.classes[label]}"]
    if inputs.binary:
        lines[0] += f", p_{inputs.positive[:3]} {probabilities[1]:.2f}"
    else:
        lines[0] += f", called {inputs.classes[called]}"
    column = inputs.caption_column
    if column:
        lines.append(f"{column} = {float(inputs.objects[column][index]):.1f}")
    return "\n".join(lines), wrong
