"""Simulated SDSS gri galaxies rendered as Galaxy Zoo shows real ones: colour JPEGs, cropped and downsampled.

The Galaxy Zoo reader (:mod:`deepsky.data.galaxyzoo`) gives, for a real
galaxy, the centre half of a 423-pixel SDSS colour JPEG (Lupton et al. 2004
asinh colours: i red, r green, g blue) area-averaged to 96 pixels, channels
g, r, i in 0-1. :func:`render_colour_images` takes simulated images in
nanomaggies (:func:`deepsky.simulate.morphology.make_morphology`) through
the same steps:

1. **Size.** Galaxy Zoo 1 cut each image at 0.024 Petrosian radii per pixel
   (Lintott et al. 2008), so a galaxy fills the picture whatever its angular
   size. Each simulated galaxy's Petrosian radius R_P (SDSS definition: the
   radius where the surface brightness in the annulus 0.8-1.25 R_P is 0.2 of
   the mean inside R_P) is measured on its band-summed image, and the image
   is resampled (surface brightness kept: linear interpolation when
   magnified, area averages when shrunk; noise-only margins where the stamp
   ends) onto a grid of "Galaxy Zoo pixels" on which R_P spans
   ``petrosian_radius_gz_pixels`` times a log-normal scatter.
2. **Field.** Real pictures hold other sources: field stars, and
   neighbouring and background galaxies (Galaxy Zoo galaxies have many).
   Stars (stellar-locus colours, the galaxy's seeing) and small galaxies are
   scattered over the sky each picture covers, so a larger galaxy's picture,
   covering more sky, holds more; their densities are set by the number of
   other sources found in the real pictures, not by blank-field counts.
3. **Colour.** Lupton et al.'s asinh colour image: each band times its
   scale, ``I`` their mean, every band multiplied by
   ``asinh(Q I / stretch) / (Q I)``, a sky pedestal added, negative values
   set to 0 and pixels brighter than 1 scaled down keeping their colour.
4. **JPEG.** 8-bit, then JPEG at quality 75 with 4:2:0 chroma subsampling,
   what the real files use (read from their quantisation tables and sampling
   factors), on the Galaxy Zoo pixel grid.
5. **Crop and downsample**: the centre 211.5 Galaxy Zoo pixels (half of
   423) area-averaged to 96 pixels with the reader's own
   :func:`~deepsky.data.image_folders.crop_and_resample`.

What was matched (``benchmarks/calibrate_colour_images.py`` fits the
stretch, colours and sizes on 800 simulated galaxies; the numbers below are
2,000 fresh ones against the 4,225 training-part images of
``galaxyzoo1_sdss``, labels unused; medians over images, 0-1 units,
channels g, r, i):

=====================================  ======================  ======================
statistic                              real                    rendered
=====================================  ======================  ======================
sky (median of the 4-pixel border)     0.011 0.018 0.019       0.011 0.017 0.018
sky noise (1.4826 MAD of the border)   0.012 0.014 0.014       0.011 0.014 0.015
centre (mean of the central 8x8)       0.388 0.551 0.679       0.404 0.547 0.688
colour of bright pixels (g:r:i)        0.261 0.337 0.402       0.264 0.336 0.400
half-light radius, 10/50/90% (pixels)  11.1 / 13.8 / 18.5      10.6 / 13.7 / 17.4
other sources (8 sigma), mean          2.14 (79% of images)    2.11 (73% of images)
=====================================  ======================  ======================

Half-light radius: of the sky-subtracted g+r+i light of the pixels connected
to the centre that lie 3 sigma above the sky after a 3x3 mean
(:func:`central_source_size`); other sources: :func:`field_sources`. The
fit (:data:`GALAXY_ZOO_SDSS`) gives band scales g 1.52, r 1.11, i 1.00,
softening 0.94 nanomaggies per SDSS pixel, Q = 5.5 (made with 3 stars and 60
galaxies per square arcminute; then lowered to 2 and 40 to match the count
of other sources, and the Petrosian radius re-set by hand to keep the
sizes): a median Petrosian radius of 42.1 Galaxy Zoo pixels with 0.07 dex
scatter, Lintott et al.'s 0.024 R_P per pixel (41.7) within 1%. Labels were
not used, so each simulated class keeps its own relative size: median
half-light radii 14.5 (elliptical), 13.2 (spiral), 14.1 (edge-on) and 13.1
(merger) pixels rendered, against 14.3, 12.4, 12.4 and 16.5 real.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.simulate.surveys import mag_to_nmgy

RENDERER_VERSION = "gz-colour-1"
GZ_CUTOUT_PIXELS = 423  # side of a Galaxy Zoo 1 JPEG
BANDS = ("g", "r", "i")


@dataclass(frozen=True)
class ColourRendering:
    """How simulated gri nanomaggies become a Galaxy Zoo colour picture.

    Attributes
    ----------
    band_scales : tuple of float
        Multipliers of the g, r and i images (nanomaggies) before the stretch.
    stretch_nmgy : float
        Lupton's softening, in scaled nanomaggies per 0.396-arcsec pixel:
        fainter light is shown linearly, brighter light logarithmically.
    q : float
        Lupton's Q (how fast the stretch turns logarithmic).
    sky_level : tuple of float
        Pedestal added to the g, r, i channels after the stretch (0-1 units).
    petrosian_radius_gz_pixels : float
        Median Petrosian radius in Galaxy Zoo pixels (1/0.024 = 41.7 nominally).
    petrosian_scatter_dex : float
        Log-normal scatter of that radius, galaxy to galaxy.
    stars_per_arcmin2, star_mag_range : float, (float, float)
        Field stars: Poisson number per square arcminute of sky in the picture,
        r magnitudes (AB) between these, counts rising as 10^(0.15 r), stellar-locus
        colours, drawn with the galaxy's PSF.
    neighbours_per_arcmin2, neighbour_mag_range : float, (float, float)
        Neighbouring and background galaxies likewise (counts rising as
        10^(0.3 r), half-light radii 0.4-2 arcsec, galaxy colours), drawn as
        round Gaussians convolved with the PSF.
    jpeg_quality : int or None
        JPEG quality (75 as the real files); None keeps 8-bit rounding only.
    crop_fraction : float
        Centre crop of the 423-pixel picture, as the reader's.
    image_pixels : int
        Side of the output image.
    """

    band_scales: tuple[float, float, float] = (1.5207, 1.1134, 1.0)
    stretch_nmgy: float = 0.93725
    q: float = 5.4591
    sky_level: tuple[float, float, float] = (0.00839, 0.01277, 0.01301)
    petrosian_radius_gz_pixels: float = 42.1
    petrosian_scatter_dex: float = 0.07
    stars_per_arcmin2: float = 2.0
    star_mag_range: tuple[float, float] = (15.0, 22.0)
    neighbours_per_arcmin2: float = 40.0
    neighbour_mag_range: tuple[float, float] = (17.0, 23.5)
    jpeg_quality: int | None = 75
    crop_fraction: float = 0.5
    image_pixels: int = 96

    def to_dict(self) -> dict:
        return asdict(self)


GALAXY_ZOO_SDSS = ColourRendering()


def render_colour_images(images, pixel_scale_arcsec: float = 0.396, offsets_pixels=None, psf_fwhm_arcsec=None,
                         seed: int = 0, rendering: ColourRendering = GALAXY_ZOO_SDSS, batch: int = 128,
                         petrosian_radius_pixels=None) -> np.ndarray:
    """Render simulated g, r, i images (nanomaggies) as the Galaxy Zoo reader gives real galaxies.

    Parameters
    ----------
    images : ndarray
        (N, S, S, 3) sky-subtracted nanomaggies per pixel, bands g, r, i.
    pixel_scale_arcsec : float
        Pixel scale of ``images`` (arcsec/pixel); the stretch is defined
        per 0.396-arcsec SDSS pixel.
    offsets_pixels : ndarray, optional
        (N, 2) x, y of each galaxy's centre from the stamp centre, in pixels
        (``objects["offset_pixels"]`` of a simulation); default 0.
    psf_fwhm_arcsec : ndarray, optional
        (N, 3) or (N,) seeing FWHM of each galaxy's g, r, i images (arcsec), for
        the stars and neighbours added around it; default 1.4.
    seed : int
        Seed of the size scatter, the stars and neighbours, and the noise in
        margins beyond a stamp.
    rendering : ColourRendering
        The settings (default: fitted to ``galaxyzoo1_sdss``).
    batch : int
        Galaxies rendered at a time (memory: about 1.5 MB each).
    petrosian_radius_pixels : ndarray, optional
        (N,) the galaxies' Petrosian radii in ``images``' pixels, if already
        measured (:func:`petrosian_radius`).

    Returns
    -------
    ndarray
        (N, image_pixels, image_pixels, 3) float32 in [0, 1], channels g, r,
        i (blue, green, red), multiples of 1/255 averaged over the crop.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2]:
        raise DeepskyError(f"images must be (N, S, S, 3) g, r, i stamps; received shape {images.shape}")
    if not np.isfinite(images).all():
        raise DeepskyError("images have NaN or infinite pixels; mask or drop them before rendering")
    n = len(images)
    offsets = np.zeros((n, 2)) if offsets_pixels is None else np.asarray(offsets_pixels, dtype=np.float64)
    if offsets.shape != (n, 2):
        raise DeepskyError(f"offsets_pixels must be (N, 2) = ({n}, 2); received shape {offsets.shape}")
    psf = np.asarray(1.4 if psf_fwhm_arcsec is None else psf_fwhm_arcsec, dtype=np.float64)
    try:
        psf = np.broadcast_to(psf[:, None] if psf.ndim == 1 else psf, (n, 3))
    except ValueError:
        raise DeepskyError(f"psf_fwhm_arcsec must be one value, (N,) or (N, 3) = ({n}, 3); "
                           f"received shape {psf.shape}") from None
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 31]))
    if petrosian_radius_pixels is None:
        radius = petrosian_radius(images, offsets)
    else:
        radius = np.array(petrosian_radius_pixels, dtype=np.float64)
        if radius.shape != (n,):
            raise DeepskyError(f"petrosian_radius_pixels must be (N,) = ({n},); received shape {radius.shape}")
    radius *= 10 ** rng.normal(0.0, rendering.petrosian_scatter_dex, n) if rendering.petrosian_scatter_dex else 1.0
    # stamp pixels per Galaxy Zoo pixel
    step = radius / rendering.petrosian_radius_gz_pixels
    out = np.empty((n, rendering.image_pixels, rendering.image_pixels, 3), np.float32)
    for start in range(0, n, batch):
        part = slice(start, start + batch)
        noise_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 37, start]))
        out[part] = _render_batch(images[part], step[part], offsets[part], psf[part], pixel_scale_arcsec, rendering,
                                  noise_rng)
    return out


def render_dataset(data: Dataset, seed: int = 0, rendering: ColourRendering = GALAXY_ZOO_SDSS) -> Dataset:
    """A simulated morphology Dataset (nanomaggies, bands g, r, i) rendered as Galaxy Zoo colour images.

    Labels and per-object columns are kept; ``objects["petrosian_radius_pixels"]``
    (in the simulation's pixels) is added; the metadata says what was done and
    looks like the Galaxy Zoo reader's (units, bands, crop) so the two train alike.
    """
    bands = list(data.meta.get("bands") or [])
    if bands != list(BANDS):
        raise DeepskyError(f"rendering needs simulated g, r, i images; the data set has bands {bands or 'unknown'}")
    if data.meta.get("units") != "nanomaggies":
        raise DeepskyError(f"rendering needs images in nanomaggies; the data set holds {data.meta.get('units')!r}")
    scale = float(data.meta.get("pixel_scale_arcsec") or 0.396)
    offsets = data.objects.get("offset_pixels")
    radius = petrosian_radius(data.images, offsets)
    images = render_colour_images(data.images, scale, offsets, data.objects.get("psf_fwhm_arcsec"), seed=seed,
                                  rendering=rendering, petrosian_radius_pixels=radius)
    objects = dict(data.objects)
    objects["petrosian_radius_pixels"] = radius.astype(np.float32)
    meta = {key: value for key, value in data.meta.items() if key not in ("pixel_scale_arcsec", "cutout_pixels")}
    meta.update({
        "units": "jpeg (0-1, asinh-stretched SDSS colour image)",
        "channels": {"g": "blue", "r": "green", "i": "red"},
        "pixel_scale_arcsec": None,
        "pixel_scale_note": "scaled to each galaxy's Petrosian radius, as Galaxy Zoo 1's cutouts",
        "size": rendering.image_pixels,
        "crop_fraction": rendering.crop_fraction,
        "renderer": RENDERER_VERSION,
        "rendering": rendering.to_dict(),
        "render_seed": int(seed),
        "simulated_pixel_scale_arcsec": scale,
    })
    return Dataset(inputs=images, labels=data.labels, objects=objects, meta=meta)


# -- measurements ---------------------------------------------------------------------------
def petrosian_radius(images, offsets_pixels=None, eta: float = 0.2) -> np.ndarray:
    """Petrosian radius (pixels) of the band-summed light around each stamp's centre.

    SDSS's definition: the smallest radius r at which the mean surface
    brightness in the annulus 0.8 r - 1.25 r falls to ``eta`` times the mean
    inside r. Where that never happens inside the stamp (a galaxy larger than
    its stamp) the largest radius the stamp allows is returned.

    >>> y, x = np.mgrid[:64, :64] - 31.5
    >>> disk = np.exp(-np.hypot(x, y) / 3.0)[None, :, :, None].repeat(3, axis=3)
    >>> round(float(petrosian_radius(disk)[0] / 3.0), 1)  # 3.6 scale lengths for an exponential
    3.6
    """
    light = np.asarray(images, dtype=np.float64).sum(axis=-1)
    n, side = light.shape[0], light.shape[1]
    offsets = np.zeros((n, 2)) if offsets_pixels is None else np.asarray(offsets_pixels, dtype=np.float64)
    step = 0.25
    radii = np.arange(step, side / 2 + step, step)
    # the flux inside each radius, pixel centres binned by their distance from the galaxy's centre
    y, x = np.mgrid[:side, :side] + 0.5 - side / 2
    cumulative = np.empty((n, len(radii)))
    for i in range(n):
        distance = np.hypot(x - offsets[i, 0], y - offsets[i, 1]).ravel()
        bins = np.minimum(np.searchsorted(radii, distance), len(radii) - 1)
        cumulative[i] = np.cumsum(np.bincount(bins, light[i].ravel(), minlength=len(radii)))
    # below 2.5 pixels the annulus holds too few pixel centres to measure a surface brightness
    r = radii[(1.25 * radii <= side / 2) & (radii >= 2.5)]

    def inside(radius):
        k = np.interp(radius, radii, np.arange(len(radii)))
        low = np.floor(k).astype(int)
        high = np.minimum(low + 1, len(radii) - 1)
        t = k - low
        return cumulative[:, low] * (1 - t) + cumulative[:, high] * t

    local = (inside(1.25 * r) - inside(0.8 * r)) / ((1.25**2 - 0.8**2) * r**2)
    mean = inside(r) / r**2
    ratio = local / np.where(mean > 0, mean, np.inf)
    below = ratio < eta
    found = below.any(axis=1)
    k = np.argmax(below, axis=1)
    before = np.maximum(k - 1, 0)
    rows = np.arange(n)
    e0, e1 = ratio[rows, before], ratio[rows, k]
    t = np.clip((e0 - eta) / np.where(e0 != e1, e0 - e1, 1.0), 0.0, 1.0)
    out = r[before] + t * (r[k] - r[before])
    return np.where(found, out, r[-1])


def central_source_size(images, threshold: float = 3.0) -> np.ndarray:
    """Half-light radius (pixels) of the source at the centre of each colour image.

    The sky-subtracted g+r+i light (sky and noise from the 4-pixel border) of
    the pixels connected to the centre that lie ``threshold`` sigma above
    the sky after a 3x3 mean; the radius around its light-weighted centre
    holding half of it. NaN where nothing at the centre clears the threshold.
    """
    from scipy import ndimage

    light = np.asarray(images, dtype=np.float64).sum(axis=-1)
    n, side = light.shape[:2]
    sky, noise = _border_stats(light[..., None])
    sky, noise = sky[:, 0], noise[:, 0]
    smooth = ndimage.uniform_filter(light, size=(1, 3, 3))
    y, x = np.mgrid[:side, :side] - (side - 1) / 2
    centre = slice(side // 2 - 2, side // 2 + 2)
    out = np.full(n, np.nan)
    for i in range(n):
        labels, _ = ndimage.label(smooth[i] - sky[i] > threshold * noise[i] / 3.0)
        touching = labels[centre, centre].ravel()
        touching = touching[touching > 0]
        if not touching.size:
            continue
        flux = np.where(labels == np.bincount(touching).argmax(), light[i] - sky[i], 0.0)
        total = flux.sum()
        if total <= 0:
            continue
        cx, cy = (flux * x).sum() / total, (flux * y).sum() / total
        distance = np.hypot(x - cx, y - cy).ravel()
        order = np.argsort(distance)
        out[i] = distance[order][np.searchsorted(np.cumsum(flux.ravel()[order]), 0.5 * total)]
    return out


def field_sources(images, threshold: float = 8.0, min_pixels: int = 3) -> np.ndarray:
    """Number of sources in each colour image besides the central one.

    Groups of at least ``min_pixels`` connected pixels ``threshold`` sigma above the sky
    in the g+r+i image after a 3x3 mean (sky and sigma of that smoothed image from its
    4-pixel border), not counting the group at the centre.
    """
    from scipy import ndimage

    smooth = ndimage.uniform_filter(np.asarray(images, dtype=np.float64).sum(axis=-1), size=(1, 3, 3))
    sky, noise = _border_stats(smooth[..., None])
    side = smooth.shape[1]
    centre = slice(side // 2 - 2, side // 2 + 2)
    out = np.zeros(len(smooth), dtype=np.int64)
    for i, image in enumerate(smooth):
        labels, count = ndimage.label(image - sky[i, 0] > threshold * noise[i, 0])
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        central = np.unique(labels[centre, centre])
        big = np.flatnonzero(sizes >= min_pixels)
        out[i] = np.setdiff1d(big[big > 0], central).size
    return out


def image_statistics(images) -> dict:
    """The statistics rendered and real colour images are matched on (medians over images, per channel).

    ``sky`` (median of the 4-pixel border), ``noise`` (1.4826 x its median
    absolute deviation), ``centre`` (mean of the central 8x8 pixels),
    ``colour`` (share of each channel in the pixels whose g+r+i exceeds 0.6),
    ``half_light_radius`` (10th, 50th, 90th percentile of
    :func:`central_source_size`, pixels), ``field_sources`` (mean number of
    other sources, :func:`field_sources`, and the fraction of images with any) and ``n``.
    """
    images = np.asarray(images, dtype=np.float32)
    sky, noise = _border_stats(images)
    side = images.shape[1]
    c = slice(side // 2 - 4, side // 2 + 4)
    bright = images[images.sum(axis=-1) > 0.6]
    colour = bright.mean(axis=0) / bright.sum(axis=-1).mean() if len(bright) else np.full(3, np.nan)
    r50 = central_source_size(images)
    others = field_sources(images)
    return {
        "sky": np.median(sky, axis=0).tolist(),
        "noise": np.median(noise, axis=0).tolist(),
        "centre": np.median(images[:, c, c].mean(axis=(1, 2)), axis=0).tolist(),
        "colour": np.asarray(colour).tolist(),
        "half_light_radius": np.nanpercentile(r50, [10, 50, 90]).tolist(),
        "field_sources": [float(others.mean()), float((others > 0).mean())],
        "n": int(len(images)),
    }


# -- internals ------------------------------------------------------------------------------
def _border_stats(images, width: int = 4):
    """Per image and channel: median and 1.4826 x MAD of the pixels within ``width`` of the edge."""
    n, side, _, bands = images.shape
    border = np.concatenate([images[:, :width].reshape(n, -1, bands), images[:, -width:].reshape(n, -1, bands),
                             images[:, width:-width, :width].reshape(n, -1, bands),
                             images[:, width:-width, -width:].reshape(n, -1, bands)], axis=1)
    median = np.median(border, axis=1)
    return median, 1.4826 * np.median(np.abs(border - median[:, None]), axis=1)


def _hat_integral(t):
    """Integral of the linear-interpolation kernel max(0, 1 - |u|) from -inf to t."""
    t = np.clip(t, -1.0, 1.0)
    return np.where(t < 0, 0.5 * (t + 1) ** 2, 1 - 0.5 * (1 - t) ** 2)


def _resampling_weights(centre, step, n_out, n_in):
    """(N, n_out, n_in) weights of input pixels in each output pixel along one axis.

    Output pixel j covers ``centre + (j - n_out/2) * step`` to ``+ step`` in input-pixel
    coordinates (input pixel k centred at k + 0.5); each input pixel contributes its
    linear-interpolation kernel averaged over that interval. Magnified, this is linear
    interpolation; shrunk, an area average; the weights of an interior pixel sum to 1,
    so surface brightness is kept.
    """
    lower = centre[:, None] + (np.arange(n_out)[None, :] - n_out / 2) * step[:, None]
    k = np.arange(n_in) + 0.5
    upper = lower + step[:, None]
    weights = _hat_integral(upper[:, :, None] - k) - _hat_integral(lower[:, :, None] - k)
    return (weights / step[:, None, None]).astype(np.float32)


def _render_batch(images, step, offsets, psf, pixel_scale_arcsec, rendering, rng):
    resampled = _resample_batch(images, step, offsets, pixel_scale_arcsec, rendering, rng)
    _add_field(resampled, step * pixel_scale_arcsec, psf, rendering, rng)
    return _finish(resampled, rendering)


def _resample_batch(images, step, offsets, pixel_scale_arcsec, rendering, rng):
    """(N, grid, grid, 3) nanomaggies per SDSS pixel on the Galaxy Zoo pixels of the crop."""
    n, side = images.shape[:2]
    # the Galaxy Zoo pixels of the crop (211.5 of 423) rounded up to whole, even pixels
    grid = int(np.ceil(rendering.crop_fraction * GZ_CUTOUT_PIXELS / 2)) * 2
    needed = int(np.ceil(grid * step.max() + 2 * np.abs(offsets).max() + 4))
    padded = max(side, needed + (needed - side) % 2)
    if padded > side:
        # margins of sky noise where the output reaches beyond the stamp
        _, noise = _border_stats(images)
        big = rng.standard_normal((n, padded, padded, 3)).astype(np.float32) * noise[:, None, None, :]
        edge = (padded - side) // 2
        big[:, edge : edge + side, edge : edge + side] = images
        images = big
    wx = _resampling_weights(padded / 2 + offsets[:, 0], step, grid, padded)
    wy = _resampling_weights(padded / 2 + offsets[:, 1], step, grid, padded)
    resampled = np.einsum("nik,nklb->nilb", wy, images, optimize=True)
    resampled = np.einsum("nilb,njl->nijb", resampled, wx, optimize=True)
    # surface brightness per SDSS pixel, whatever the simulation's pixel
    return resampled * np.float32((0.396 / pixel_scale_arcsec) ** 2)


def _add_field(grid, gz_pixel_arcsec, psf_fwhm_arcsec, rendering, rng):
    """Add field stars and neighbouring galaxies (nanomaggies per SDSS pixel) to (N, G, G, 3) in place.

    ``gz_pixel_arcsec`` (N,) is each picture's Galaxy Zoo pixel on the sky, so a
    larger galaxy's picture covers more sky and holds more of them.
    """
    n, side = grid.shape[:2]
    area = (side * gz_pixel_arcsec / 60.0) ** 2  # arcmin^2
    sources = []
    populations = ((rendering.stars_per_arcmin2, rendering.star_mag_range, 0.15, "star"),
                   (rendering.neighbours_per_arcmin2, rendering.neighbour_mag_range, 0.3, "galaxy"))
    for density, mags, slope, kind in populations:
        if density <= 0:
            continue
        count = rng.poisson(density * area)
        owner = np.repeat(np.arange(n), count)
        k = len(owner)
        lo, hi = 10 ** (slope * np.array(mags))
        r_mag = np.log10(lo + rng.random(k) * (hi - lo)) / slope
        if kind == "star":
            # the stellar locus (Covey et al. 2007): r - i follows g - r
            g_r = rng.uniform(0.3, 1.5, k)
            r_i = np.clip(0.42 * g_r - 0.12, 0.0, None) + rng.normal(0, 0.05, k)
            width = np.zeros(k)
        else:
            g_r, r_i = rng.uniform(0.35, 1.0, k), rng.uniform(0.15, 0.45, k)
            width = rng.uniform(0.4, 2.0, k) / 1.177  # Gaussian sigma of an exponential's half-light radius
        colours = np.stack([r_mag + g_r, r_mag, r_mag - r_i], axis=1)
        sigma = np.sqrt((psf_fwhm_arcsec[owner] / 2.3548) ** 2 + width[:, None] ** 2)  # arcsec, per band
        sources.append((owner, mag_to_nmgy(colours), sigma, rng.uniform(0, side, (k, 2))))
    if not sources:
        return
    owner, flux, sigma, position = (np.concatenate(parts) for parts in zip(*sources))
    from scipy.special import ndtr

    edges = np.arange(side + 1)
    sky_pixels = (gz_pixel_arcsec[owner] / 0.396) ** 2  # SDSS pixels per Galaxy Zoo pixel
    for b in range(3):
        width = sigma[:, b] / gz_pixel_arcsec[owner]  # Galaxy Zoo pixels
        # the Gaussian's integral over each pixel, as an outer product of its row and column parts
        gx = np.diff(ndtr((edges[None, :] - position[:, :1]) / width[:, None]), axis=1)
        gy = np.diff(ndtr((edges[None, :] - position[:, 1:]) / width[:, None]), axis=1)
        gy *= (flux[:, b] / sky_pixels)[:, None]
        for i in np.unique(owner):
            mine = owner == i
            grid[i, :, :, b] += (gy[mine].T @ gx[mine]).astype(np.float32)


def _finish(resampled, rendering):
    """Stretch, JPEG, then the reader's crop and area average: (N, size, size, 3) float32 in 0-1."""
    from deepsky.data.image_folders import crop_and_resample

    n, grid = resampled.shape[:2]
    picture = _jpeg(_lupton(resampled, rendering), rendering.jpeg_quality)
    # all galaxies and channels at once: the reader's function takes (H, W, channels)
    stacked = np.moveaxis(picture, 0, 2).reshape(grid, grid, -1).astype(np.float32) / 255.0
    fraction = rendering.crop_fraction * GZ_CUTOUT_PIXELS / grid
    small = crop_and_resample(stacked, rendering.image_pixels, crop_fraction=fraction)
    return np.moveaxis(small.reshape(rendering.image_pixels, rendering.image_pixels, n, 3), 2, 0)


def _lupton(images, rendering):
    """Lupton et al. (2004) asinh colour image of (N, H, W, 3) g, r, i in 0-1 (before 8 bits)."""
    scaled = images * np.asarray(rendering.band_scales, np.float32)
    # (reductions over a last axis of 3 are slow in numpy: channels are combined by hand)
    x = (scaled[..., 0] + scaled[..., 1] + scaled[..., 2]) * np.float32(rendering.q / (3 * rendering.stretch_nmgy))
    small = np.abs(x) < 1e-6
    # asinh(x) / x -> 1 at x = 0 (the sky's zeros)
    factor = np.arcsinh(x) / np.where(small, np.float32(1), x)
    factor[small] = 1
    factor *= np.float32(1 / rendering.stretch_nmgy)
    out = scaled * factor[..., None]
    out += np.asarray(rendering.sky_level, np.float32)
    np.clip(out, 0.0, None, out=out)
    brightest = np.maximum(np.maximum(out[..., 0], out[..., 1]), out[..., 2])
    np.maximum(brightest, 1.0, out=brightest)  # pixels brighter than 1 keep their colour
    out /= brightest[..., None]
    return out


def _jpeg(pictures, quality):
    """8-bit (N, H, W, 3) g, r, i; through JPEG (4:2:0, as the real files) unless ``quality`` is None."""
    eight_bit = np.round(np.clip(pictures, 0.0, 1.0) * 255).astype(np.uint8)
    if quality is None:
        return eight_bit
    from PIL import Image

    out = np.empty_like(eight_bit)
    for i, picture in enumerate(eight_bit):
        buffer = io.BytesIO()
        # red, green, blue = i, r, g
        Image.fromarray(np.ascontiguousarray(picture[..., ::-1])).save(buffer, format="JPEG", quality=int(quality),
                                                                       subsampling="4:2:0")
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out[i] = np.asarray(decoded.convert("RGB"))[..., ::-1]
    return out
