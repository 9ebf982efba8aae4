"""Quasar microlensing: magnification maps by inverse ray shooting, accretion discs, LSST-like light curves.

No CPU package makes magnification maps, so deepsky shoots its own rays
(numba, both cores). Lengths are in Einstein radii R_E of the (equal-mass)
microlenses. A lensed image has convergence ``kappa`` and shear ``gamma``;
a fraction ``smooth_fraction`` of kappa is smooth matter, the rest stars,
placed uniformly in a disc wide enough to cover every ray shot. Rays on a
regular grid of the image plane are mapped to the source plane by

    y = (1 - kappa_c) z - gamma conj(z) - conj( sum_i 1 / (z - z_i) )

(complex notation, the shear along the first axis) and counted per source
pixel. Each cell of the ray grid sums its nearby stars exactly and the
others through a Taylor series about the cell's centre, so a 1000x1000 map
takes seconds rather than the hours of the direct sum. The map's mean
magnification is 1/((1-kappa)^2 - gamma^2); with fewer rays per pixel it
is noisier, never biased.

An accretion disc of half-light radius r (R_E) and a given profile (thin
disc, Gaussian or uniform, face-on) is convolved with the map; a light
curve is the convolved map read along a straight track at an effective
transverse velocity, sampled as LSST would over a decade (seasons, weather,
about one visit in four nights), in magnitudes relative to the unlensed
image, with photometric noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

# lensed-image presets: (kappa, gamma); the smooth fraction is chosen separately
PRESETS = {
    "minimum": (0.40, 0.40),  # a minimum of the arrival-time surface: mean magnification 5
    "saddle": (0.60, 0.60),  # a saddle point: |mean magnification| 5
    "low": (0.30, 0.30),  # far from the critical curves: mean magnification 2.5
}
PROFILES = ("thin-disc", "gaussian", "uniform")
MAP_WIDTH_RE = 20.0  # the source-plane map spans this many Einstein radii
MAP_PIXELS = 1000
RAYS_PER_PIXEL = 10.0  # unlensed rays per source pixel: the map's shot noise is about 1/sqrt(10 x magnification)
EINSTEIN_RADIUS_CM = 7e15  # R_E of 0.01 Msun microlenses for a lens at z 0.5 and a source at z 2 (about 2.7 light days)
TAYLOR_ORDER = 10  # far-field terms; the far stars are at least three cell half-diagonals from a cell's centre


def mean_magnification(kappa: float, gamma: float) -> float:
    """The mean magnification 1 / ((1 - kappa)^2 - gamma^2) of a lensed image (negative for saddle points)."""
    return 1.0 / ((1.0 - kappa) ** 2 - gamma**2)


@dataclass
class MagnificationMap:
    """Magnifications (pixels, pixels) over ``width_re`` Einstein radii for an image of ``kappa``, ``gamma``."""

    values: np.ndarray
    width_re: float
    kappa: float
    gamma: float
    smooth_fraction: float
    stars: int
    rays: int
    seed: int

    @property
    def pixel_re(self) -> float:
        return self.width_re / self.values.shape[0]


def magnification_map(kappa: float, gamma: float, smooth_fraction: float = 0.0, pixels: int = MAP_PIXELS,
                      width_re: float = MAP_WIDTH_RE, rays_per_pixel: float = RAYS_PER_PIXEL, seed: int = 0,
                      method: str = "taylor") -> MagnificationMap:
    """A magnification map by inverse ray shooting (``method="direct"`` sums every star for every ray: for tests).

    The rays cover the source map plus a margin of 3 R_E and 10% of its
    width, mapped back by the mean lens mapping; the stars fill a disc 20%
    wider than the ray region.
    """
    from deepsky.simulate import _raytrace

    if not (0 <= smooth_fraction < 1):
        raise DeepskyError(f"smooth fraction must be in [0, 1); received {smooth_fraction}")
    if abs(1 - kappa - gamma) < 0.02 or abs(1 - kappa + gamma) < 0.02:
        raise DeepskyError(f"kappa {kappa}, gamma {gamma} lie on a critical line: the mean magnification is infinite")
    if pixels < 8 or width_re <= 0 or rays_per_pixel <= 0:
        raise DeepskyError("the map needs at least 8 pixels, a positive width and rays per pixel")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 19]))
    half = width_re / 2
    margin = 3.0 + 0.1 * width_re
    half_rays = np.array([(half + margin) / abs(1 - kappa - gamma), (half + margin) / abs(1 - kappa + gamma)])
    kappa_stars = kappa * (1 - smooth_fraction)
    star_radius = 1.2 * float(np.hypot(*half_rays)) + 2.0
    count = rng.poisson(kappa_stars * star_radius**2)  # N pi R_E^2 / (pi R^2) = kappa_stars
    radius = star_radius * np.sqrt(rng.uniform(size=count))
    angle = rng.uniform(0, 2 * np.pi, count)
    stars = radius * np.exp(1j * angle)
    # the stars' own mean field: a disc of exactly kappa_stars, so that small-number
    # fluctuations of the count inside do not shift the mean magnification
    kappa_smooth = kappa * smooth_fraction + (kappa_stars - count / star_radius**2)
    pixel = width_re / pixels
    spacing = pixel / np.sqrt(rays_per_pixel)
    # cells balance the far field's cost (cells x stars x terms) against the near stars' (rays x stars per cell)
    area = 4 * half_rays[0] * half_rays[1]
    rays = area / spacing**2
    near = max(kappa_stars, 1e-3) * np.pi * (_raytrace.NEAR_HALF_DIAGONALS / np.sqrt(2)) ** 2
    cell = (area * max(count, 1) * (TAYLOR_ORDER + 1) / (rays * near)) ** 0.25
    cell = float(np.clip(cell, spacing, 0.5 * star_radius))
    per_cell = max(1, int(round(cell / spacing)))
    cell = per_cell * spacing
    cells = np.ceil(2 * half_rays / cell).astype(int)
    origin = -cells * cell / 2
    counts = np.zeros((pixels, pixels), np.int64)
    if method == "direct":
        _raytrace.shoot_direct(stars.real.copy(), stars.imag.copy(), kappa_smooth, gamma, origin[0], origin[1],
                               cell, int(cells[0]), int(cells[1]), per_cell, half, pixel, pixels, counts)
    elif method == "taylor":
        _raytrace.shoot_taylor(stars.real.copy(), stars.imag.copy(), kappa_smooth, gamma, origin[0], origin[1],
                               cell, int(cells[0]), int(cells[1]), per_cell, half, pixel, pixels, TAYLOR_ORDER, counts)
    else:
        raise DeepskyError(f"unknown ray-shooting method {method!r}; use taylor or direct")
    rays = int(np.prod(cells)) * per_cell**2
    values = counts / (pixel / spacing) ** 2  # rays per pixel over those of an unlensed sky
    return MagnificationMap(values.astype(np.float32), width_re, kappa, gamma, smooth_fraction, int(count), rays, seed)


# -- accretion discs -------------------------------------------------------------------
def disc_profile(profile: str, half_light_re: float, pixel_re: float) -> np.ndarray:
    """A face-on disc's surface brightness on a square of pixels, unit sum, with half its light within ``half_light_re``.

    ``thin-disc``: the Shakura-Sunyaev temperature profile seen at one
    wavelength, I(r) proportional to 1 / (exp((r / r_s)^(3/4)) - 1);
    ``gaussian``; ``uniform``: a disc of constant brightness.
    """
    if profile not in PROFILES:
        raise DeepskyError(f"unknown disc profile {profile!r}; choose from {', '.join(PROFILES)}")
    if half_light_re <= 0:
        raise DeepskyError(f"the half-light radius must be positive; received {half_light_re}")
    shape = _radial_profile(profile)
    scale = half_light_re / _half_light(shape)
    extent = {"thin-disc": 12.0, "gaussian": 4.0, "uniform": 1.0}[profile] * scale
    half = max(1, int(np.ceil(extent / pixel_re)))
    # each pixel sampled 4x4 times: a disc of a pixel or two keeps its half-light radius
    offsets = (np.arange(4) + 0.5) / 4 - 0.5
    grid = np.arange(-half, half + 1)
    x = (grid[:, None] + offsets[None, :]).ravel() * pixel_re
    r = np.hypot(x[:, None], x[None, :]) / scale
    image = shape(r).reshape(2 * half + 1, 4, 2 * half + 1, 4).mean(axis=(1, 3))
    return image / image.sum()


def _radial_profile(profile: str):
    if profile == "thin-disc":
        return lambda r: 1.0 / np.expm1(np.maximum(r, 1e-6) ** 0.75)
    if profile == "gaussian":
        return lambda r: np.exp(-0.5 * r**2)
    return lambda r: (r <= 1.0).astype(np.float64)


def _half_light(shape) -> float:
    """The half-light radius of ``shape(r)`` (r in its own scale units)."""
    r = np.linspace(0, 40, 400_001)[1:]
    cumulative = np.cumsum(shape(r) * r)
    return float(np.interp(0.5 * cumulative[-1], cumulative, r))


def convolve(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """The map seen by a finite source: ``values`` convolved with ``kernel`` (same size, edges mirrored)."""
    from scipy.signal import fftconvolve

    pad = kernel.shape[0] // 2
    padded = np.pad(values.astype(np.float64), pad, mode="reflect")
    return fftconvolve(padded, kernel, mode="valid").astype(np.float32)


# -- light curves ----------------------------------------------------------------------
YEARS = 10.0
# light curves are averaged into bins of this many days (unobserved bins interpolated): the source
# crosses a map pixel (0.02 R_E) in about 120 days, so nothing faster than that is lensing
GRID_DAYS = 10.0
SEASON_DAYS = 210.0  # visible part of each year
VISIT_FRACTION = 0.25  # nights with a visit, of those in season (LSST revisits a field every 3-4 nights)
VELOCITY_KMS = (500.0, 1200.0)  # effective transverse velocity: 2.3-5.4 R_E per decade
NOISE_MAG = (0.01, 0.05)  # photometric noise per visit


def lsst_epochs(rng, years: float = YEARS) -> np.ndarray:
    """Days of the visits to one field over ``years``: a season per year, a visit on about one night in four."""
    nights = np.arange(0, int(365.25 * years))
    start = rng.uniform(0, 365.25)
    in_season = ((nights - start) % 365.25) < SEASON_DAYS
    visited = rng.uniform(size=len(nights)) < VISIT_FRACTION
    return nights[in_season & visited].astype(np.float64)


def track_pixels(rng, pixels: int, pixel_re: float, days: np.ndarray, velocity_kms: float) -> tuple[np.ndarray, np.ndarray]:
    """(rows, columns) in map pixels of a straight track at ``velocity_kms`` through a random point, at ``days``."""
    length = velocity_kms * 1e5 * 86400.0 * days / EINSTEIN_RADIUS_CM / pixel_re  # pixels travelled
    angle = rng.uniform(0, 2 * np.pi)
    span = length[-1] if len(length) else 0.0
    margin = span / 2 + 2
    if margin >= pixels / 2:
        raise DeepskyError(f"a track of {span:.0f} pixels does not fit a map of {pixels}")
    centre = rng.uniform(margin, pixels - margin, 2)
    along = length - span / 2
    return centre[0] + along * np.sin(angle), centre[1] + along * np.cos(angle)


def read_map(values: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Bilinear magnifications of ``values`` at fractional pixel positions."""
    from scipy.ndimage import map_coordinates

    return map_coordinates(values, [rows, columns], order=1, mode="nearest")


def light_curve(convolved: np.ndarray, pixel_re: float, rng, velocity_kms: float | None = None,
                noise_mag: float | None = None) -> tuple[np.ndarray, dict]:
    """One decade on the regular grid: (epochs, 2) of [magnitude change, observed flag] and the track's settings.

    The magnitude change is -2.5 log10 of the magnification over the map's
    mean (the macro-magnification is not microlensing), observed with
    Gaussian noise at the LSST visits, averaged in bins of ``GRID_DAYS`` and
    linearly interpolated across bins without a visit; the second channel
    is 1 where a bin holds a visit. The curve is relative to its median.
    """
    velocity = float(velocity_kms if velocity_kms is not None else rng.uniform(*VELOCITY_KMS))
    noise = float(noise_mag if noise_mag is not None else rng.uniform(*NOISE_MAG))
    days = lsst_epochs(rng)
    rows, columns = track_pixels(rng, convolved.shape[0], pixel_re, days, velocity)
    magnification = read_map(convolved, rows, columns)
    mean = float(np.mean(convolved))
    observed = -2.5 * np.log10(np.maximum(magnification, 1e-6) / mean) + rng.normal(0, noise, len(days))
    bins = len(np.arange(0, 365.25 * YEARS, GRID_DAYS))
    index = np.minimum((days // GRID_DAYS).astype(int), bins - 1)
    visits = np.bincount(index, minlength=bins)
    seen = visits > 0
    means = np.bincount(index, weights=observed, minlength=bins)[seen] / visits[seen]
    centres = (np.arange(bins) + 0.5) * GRID_DAYS
    series = np.interp(centres, centres[seen], means)
    return np.stack([series - np.median(means), seen], -1).astype(np.float32), {
        "velocity_kms": velocity, "noise_mag": noise, "visits": len(days)}


# -- map cache -------------------------------------------------------------------------
def cache_dir() -> Path:
    """Where maps are kept between runs: ``$DEEPSKY_CACHE/microlensing`` or ``~/.cache/deepsky/microlensing``."""
    import os

    root = Path(os.environ.get("DEEPSKY_CACHE") or Path.home() / ".cache" / "deepsky")
    return root / "microlensing"


def cached_map(kappa: float, gamma: float, smooth_fraction: float, seed: int, pixels: int = MAP_PIXELS,
               width_re: float = MAP_WIDTH_RE, rays_per_pixel: float = RAYS_PER_PIXEL) -> MagnificationMap:
    """:func:`magnification_map`, read from the HDF5 cache when made before (written there otherwise)."""
    import os

    import h5py

    name = (f"map_k{kappa:.3f}_g{gamma:.3f}_s{smooth_fraction:.3f}_n{pixels}_w{width_re:g}_r{rays_per_pixel:g}"
            f"_seed{seed}.h5")
    path = cache_dir() / name
    if path.exists():
        try:
            with h5py.File(path, "r") as f:
                values = np.asarray(f["magnification"][...], np.float32)
                attrs = dict(f.attrs)
            if values.shape == (pixels, pixels) and np.isfinite(values).all():
                return MagnificationMap(values, width_re, kappa, gamma, smooth_fraction, int(attrs["stars"]),
                                        int(attrs["rays"]), seed)
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry is made again
    made = magnification_map(kappa, gamma, smooth_fraction, pixels, width_re, rays_per_pixel, seed)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        with h5py.File(tmp, "w") as f:
            f.create_dataset("magnification", data=made.values, compression="gzip", compression_opts=1)
            f.attrs.update({"kappa": kappa, "gamma": gamma, "smooth_fraction": smooth_fraction, "seed": seed,
                            "width_re": width_re, "stars": made.stars, "rays": made.rays})
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache costs time, not results
    return made


# -- data sets -------------------------------------------------------------------------
HALF_LIGHT_RE = tuple(float(r) for r in np.geomspace(0.02, 0.6, 10))  # the classes: disc half-light radii (R_E)
TRAIN_MAP_SEEDS = (0, 1, 2, 3, 4, 5)
TEST_MAP_SEEDS = (1000, 1001)  # held-out maps: the test never reads a map the network was trained on
# the task's maps: 10 R_E at the default maps' resolution (a decade's track crosses at most 1 R_E),
# 30 rays per pixel (a one-pixel disc then sees shot noise below 0.02 mag)
TASK_MAP_PIXELS = 500
TASK_MAP_WIDTH_RE = 10.0
TASK_RAYS_PER_PIXEL = 30.0
PRESET = "minimum"
PRESET_SMOOTH_FRACTION = 0.5


def size_class_names() -> list[str]:
    """The classes' names: ``r`` and the half-light radius in Einstein radii (``r0.020``)."""
    return [f"r{r:.3f}" for r in HALF_LIGHT_RE]


def make_microlensing(n: int, seed: int = 0, map_seeds=TRAIN_MAP_SEEDS, preset: str = PRESET,
                      smooth_fraction: float = PRESET_SMOOTH_FRACTION, pixels: int = TASK_MAP_PIXELS,
                      width_re: float = TASK_MAP_WIDTH_RE, rays_per_pixel: float = TASK_RAYS_PER_PIXEL,
                      progress=None, workers: int | None = None):
    """``n`` decade-long LSST-like light curves (n, epochs, 2), labelled by disc size (index into ``HALF_LIGHT_RE``).

    Every (map, profile) pair makes its share of the curves, the sizes in
    turn; the maps (seeds ``map_seeds`` of ``preset``) come from the HDF5
    cache or are shot first. Objects: ``half_light_re``, ``profile``,
    ``map_seed``, ``velocity_kms``, ``noise_mag``, ``visits``. The same seed
    gives the same bytes whatever the number of workers.
    """
    from deepsky.data.store import concatenate
    from deepsky.parallel import map_in_processes

    if n < 1:
        raise DeepskyError(f"the number of light curves must be positive; received {n}")
    if preset not in PRESETS:
        raise DeepskyError(f"unknown microlensing preset {preset!r}; choose from {', '.join(PRESETS)}")
    kappa, gamma = PRESETS[preset]
    maps = [cached_map(kappa, gamma, smooth_fraction, int(s), pixels, width_re, rays_per_pixel)
            for s in map_seeds]
    pairs = [(m, p) for m in range(len(maps)) for p in range(len(PROFILES))]
    counts = [len(part) for part in np.array_split(np.arange(n), len(pairs))]
    jobs = [(count, seed, k, maps[m].values, maps[m].pixel_re, int(map_seeds[m]), PROFILES[p])
            for k, ((m, p), count) in enumerate(zip(pairs, counts)) if count]
    parts = []
    for part in map_in_processes(_make_curves, jobs, workers):
        parts.append(part)
        if progress is not None:
            progress(len(part))
    data = concatenate(parts) if len(parts) > 1 else parts[0]
    data.meta.update({"seed": seed, "preset": preset, "kappa": kappa, "gamma": gamma,
                      "smooth_fraction": smooth_fraction, "map_seeds": [int(s) for s in map_seeds]})
    return data


def _make_curves(job):
    from deepsky.data.store import Dataset

    count, seed, k, values, pixel_re, map_seed, profile = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, 23, k]))
    sizes = (np.arange(count) + rng.integers(len(HALF_LIGHT_RE))) % len(HALF_LIGHT_RE)
    curves, columns = [], {"velocity_kms": [], "noise_mag": [], "visits": []}
    for size in range(len(HALF_LIGHT_RE)):
        rows = np.flatnonzero(sizes == size)
        if not len(rows):
            continue
        convolved = convolve(values, disc_profile(profile, HALF_LIGHT_RE[size], pixel_re))
        for _ in rows:
            curve, settings = light_curve(convolved, pixel_re, rng)
            curves.append(curve)
            for name in columns:
                columns[name].append(settings[name])
    labels = np.sort(sizes)
    objects = {"half_light_re": np.array([HALF_LIGHT_RE[s] for s in labels]),
               "profile": np.array([profile] * count), "map_seed": np.full(count, map_seed),
               **{name: np.asarray(v) for name, v in columns.items()}}
    meta = {"units": "magnitudes relative to the mean, observed flag", "grid_days": GRID_DAYS, "years": YEARS,
            "classes": size_class_names(), "einstein_radius_cm": EINSTEIN_RADIUS_CM}
    return Dataset(inputs=np.stack(curves).astype(np.float32), labels=labels.astype(np.int64), objects=objects,
                   meta=meta)
