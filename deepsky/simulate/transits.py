"""Transit light curves on Pearson, Palafox & Griffith's grid (2018, MNRAS 474, 478), with batman.

Each curve is a 6-hour window of 180 points at 2-minute cadence around a
possible transit. Pearson's grid: depth 200-10,000 ppm, period 2-4 days,
inclination 86-90 degrees, a/R* = 12, quadratic limb darkening (0.5, 0),
white noise of depth / ``depth_over_noise`` (his ``sig_tol``: 1.5-4.5 for
training, 0.25-3 for testing), and stellar variability: a sinusoid of
250-2,000 ppm and 6-24 hour period whose amplitude and period are
themselves modulated. Every transit has a twin without one: the same star
and variability, other noise.

``realism`` adds what real light curves hold and Pearson's set lacks:
red noise, gaps (filled by interpolation, as the light-curve reader does),
momentum dumps (a flux step and outliers), a transit anywhere in the
window, and eclipsing binaries (grazing, V-shaped eclipses) as hard
negatives.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deepsky.data.store import Dataset

CADENCE_MINUTES = 2.0
WINDOW_POINTS = 180
A_OVER_RSTAR = 12.0  # Pearson holds a/R* fixed
LIMB_DARKENING = (0.5, 0.0)  # quadratic u1, u2 as in Pearson's set-up
CLASSES = ("no transit", "transit")
CHUNK_CURVES = 5000  # curves per seeded chunk (a process's share of the work)


@dataclass(frozen=True)
class TransitGrid:
    """The parameter values curves are drawn from (each parameter independently, uniformly over its values)."""

    name: str
    depth_ppm: tuple = (200, 500, 1000, 2500, 5000, 10000)
    period_days: tuple = tuple(np.linspace(2, 4, 5))
    inclination_deg: tuple = (86.0, 87.0, 90.0)
    depth_over_noise: tuple = tuple(np.linspace(1.5, 4.5, 4))
    variability_phase: tuple = tuple(np.linspace(0, np.pi, 4))
    variability_amplitude_ppm: tuple = (250, 500, 1000, 2000)
    variability_period_hours: tuple = (6, 12, 24)
    # periods of the modulation of the variability's amplitude and period, in window lengths (100: none)
    amplitude_modulation_windows: tuple = (-4, 4, 100)
    period_modulation_windows: tuple = (-12, 4, 100)


PEARSON_TRAIN = TransitGrid("pearson-train")
PEARSON_TEST = TransitGrid("pearson-test", depth_over_noise=tuple(np.linspace(0.25, 3, 12)))
GRIDS = {grid.name: grid for grid in (PEARSON_TRAIN, PEARSON_TEST)}


@dataclass(frozen=True)
class Realism:
    """How often each feature of real light curves appears (fractions of curves)."""

    red_noise: float = 0.5  # correlated noise of 20-100% of the white noise, 10-60 minute correlation time
    gap: float = 0.15  # a stretch of 5-40 missing points, interpolated
    momentum_dump: float = 0.1  # a step of 1-3 noise sigmas and 1-3 outlying points
    eclipsing_binary: float = 0.15  # of all curves: grazing eclipses, labelled "no transit"
    offset_hours: float = 1.0  # mid-transit anywhere within this of the window's centre


NO_REALISM = Realism(0.0, 0.0, 0.0, 0.0, 0.0)


def window_times() -> np.ndarray:
    """Times (days) of the 180 points, centred on day 1 as in Pearson's code."""
    half = 0.5 * WINDOW_POINTS * CADENCE_MINUTES / 1440.0
    return np.linspace(1 - half, 1 + half, WINDOW_POINTS)


class _Batman:
    """One batman TransitModel for the window, reused for every parameter set (building one costs far more)."""

    def __init__(self, times):
        import batman

        self.params = batman.TransitParams()
        self._set(0.1, 3.0, 90.0, 1.0, A_OVER_RSTAR)
        self.model = batman.TransitModel(self.params, times)

    def _set(self, rp, period, inclination, t0, a):
        p = self.params
        p.rp, p.per, p.inc, p.t0, p.a = rp, period, inclination, t0, a
        p.ecc, p.w, p.u, p.limb_dark = 0.0, 90.0, list(LIMB_DARKENING), "quadratic"

    def flux(self, rp, period, inclination, t0, a=A_OVER_RSTAR) -> np.ndarray:
        self._set(rp, period, inclination, t0, a)
        return self.model.light_curve(self.params)


def _red_noise(rng, n, sigma, tau_minutes):
    """An AR(1) series of standard deviation ``sigma`` and correlation time ``tau_minutes``."""
    from scipy.signal import lfilter

    phi = np.exp(-CADENCE_MINUTES / tau_minutes)
    shocks = rng.normal(size=n) * np.sqrt(1 - phi**2)
    shocks[0] = rng.normal()  # the first value from the stationary distribution
    return sigma * lfilter([1.0], [1.0, -phi], shocks)


def fill_gaps(flux: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN points of one curve (the ends take the nearest value)."""
    bad = ~np.isfinite(flux)
    if not bad.any() or bad.all():
        return np.where(bad, 1.0, flux) if bad.all() else flux
    index = np.arange(len(flux))
    return np.where(bad, np.interp(index, index[~bad], flux[~bad]), flux)


def make_transits(n: int, seed: int = 0, grid: str | TransitGrid = PEARSON_TRAIN, realism: Realism = Realism(),
                  progress=None, workers: int | None = None) -> Dataset:
    """``n`` light curves (relative flux, (n, 180, 1)): transits, their no-transit twins and eclipsing binaries.

    Labels: 1 transit, 0 no transit (a twin or an eclipsing binary). Objects
    hold every parameter per curve (``kind``: planet, twin or eb;
    ``depth_ppm``, ``depth_over_noise``, ``noise_ppm``, ``period_days``,
    ``inclination_deg``, ``mid_transit_days``...). The curves are made in
    chunks of :data:`CHUNK_CURVES`, each with its own seed, on ``workers``
    processes (default: every core); the same seed gives the same bytes
    whatever the number of workers.
    """
    from deepsky.parallel import simulate_in_chunks

    grid = GRIDS[grid] if isinstance(grid, str) else grid
    if n < 1:
        from deepsky.errors import DeepskyError

        raise DeepskyError(f"the number of light curves must be positive; received {n}")
    return simulate_in_chunks(_make_chunk, n, seed, CHUNK_CURVES, grid, realism, progress=progress, workers=workers)


def _make_chunk(job) -> Dataset:
    n, seed, chunk, grid, realism = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, 14, chunk]))
    times = window_times()
    span = times[-1] - times[0]
    relative = times - times.min()
    batman_model = _Batman(times)
    n_eb = int(round(realism.eclipsing_binary * n))
    n_pairs = (n - n_eb) // 2
    n_eb = n - 2 * n_pairs
    kinds = np.array(["planet"] * n_pairs + ["twin"] * n_pairs + ["eb"] * n_eb)
    m = n_pairs + n_eb  # curves with their own star: planets (whose twins share the star) and binaries

    def pick(values, size=m):
        return np.asarray(values, np.float64)[rng.integers(0, len(values), size)]

    depth_ppm = pick(grid.depth_ppm)
    depth = depth_ppm * 1e-6
    star = {"period_days": pick(grid.period_days), "inclination_deg": pick(grid.inclination_deg),
            "depth_over_noise": pick(grid.depth_over_noise), "variability_phase": pick(grid.variability_phase),
            "variability_amplitude_ppm": pick(grid.variability_amplitude_ppm),
            "variability_period_hours": pick(grid.variability_period_hours),
            "amplitude_modulation_windows": pick(grid.amplitude_modulation_windows),
            "period_modulation_windows": pick(grid.period_modulation_windows)}
    offset_days = rng.uniform(-1, 1, m) * realism.offset_hours / 24.0
    # eclipsing binaries: a large companion on a grazing orbit (impact parameter near 1): V-shaped eclipses
    eb_radius_ratio = rng.uniform(0.2, 0.5, m)
    eb_impact = 1.0 + rng.uniform(-0.6, 0.6, m) * eb_radius_ratio
    noise = depth / star["depth_over_noise"]

    def systematics(i):
        """Variability, white noise and the realism of one curve of star ``i`` (a new draw per call)."""
        amplitude = star["variability_amplitude_ppm"][i] * 1e-6
        amplitude = amplitude * (1 + np.sin(2 * np.pi * relative / (star["amplitude_modulation_windows"][i] * span)))
        period = star["variability_period_hours"][i] / 24.0
        period = period * (1 + np.sin(2 * np.pi * relative / (star["period_modulation_windows"][i] * span)))
        period = np.where(np.abs(period) < 1e-3, 1e-3, period)  # where the modulation crosses zero
        variability = 1 + amplitude * np.sin(2 * np.pi * relative / period + star["variability_phase"][i])
        flux = variability * rng.normal(1.0, noise[i], WINDOW_POINTS)
        flags = {"red_noise": False, "gap": False, "momentum_dump": False}
        if rng.random() < realism.red_noise:
            flux = flux + _red_noise(rng, WINDOW_POINTS, noise[i] * rng.uniform(0.2, 1.0), rng.uniform(10, 60))
            flags["red_noise"] = True
        if rng.random() < realism.momentum_dump:
            at = rng.integers(10, WINDOW_POINTS - 10)
            flux[at:] += rng.choice([-1, 1]) * rng.uniform(1, 3) * noise[i]
            spikes = at + rng.integers(0, 3, rng.integers(1, 4))
            flux[spikes] += rng.choice([-1, 1], len(spikes)) * rng.uniform(4, 8, len(spikes)) * noise[i]
            flags["momentum_dump"] = True
        if rng.random() < realism.gap:
            length = rng.integers(5, 41)
            start = rng.integers(0, WINDOW_POINTS - length)
            flux[start : start + length] = np.nan
            flux = fill_gaps(flux)
            flags["gap"] = True
        return flux, flags

    flux = np.empty((n, WINDOW_POINTS), np.float32)
    rows = {key: np.empty(n, bool) for key in ("red_noise", "gap", "momentum_dump")}
    star_of = np.concatenate([np.arange(n_pairs), np.arange(n_pairs), n_pairs + np.arange(n_eb)])
    mid = 1.0 + offset_days
    for row in range(n):
        i = star_of[row]
        if kinds[row] == "planet":
            shape = batman_model.flux(np.sqrt(depth[i]), star["period_days"][i], star["inclination_deg"][i], mid[i])
        elif kinds[row] == "eb":
            radius_ratio = eb_radius_ratio[i]
            inclination = np.degrees(np.arccos(min(eb_impact[i] / A_OVER_RSTAR, 1.0)))
            shape = batman_model.flux(radius_ratio, star["period_days"][i], inclination, mid[i])
            # scale the eclipse to the grid's depth so that only its shape tells it from a transit
            dip = 1 - shape.min()
            shape = 1 - (1 - shape) * (depth[i] / dip if dip > 0 else 0.0)
        else:
            shape = 1.0
        noisy, flags = systematics(i)
        flux[row] = shape * noisy
        for key, value in flags.items():
            rows[key][row] = value
    objects = {"kind": kinds, "depth_ppm": depth_ppm[star_of], "noise_ppm": (depth_ppm / star["depth_over_noise"])[star_of],
               "mid_transit_days": mid[star_of], **{k: v[star_of] for k, v in star.items()}, **rows}
    order = rng.permutation(n)  # planets, twins and binaries mixed, not in blocks
    objects = {name: column[order] for name, column in objects.items()}
    labels = (objects["kind"] == "planet").astype(np.int64)
    return Dataset(inputs=flux[order, :, None], labels=labels, objects=objects, meta={
        "layout": "series", "classes": list(CLASSES), "units": "relative flux",
        "cadence_minutes": CADENCE_MINUTES, "window_points": WINDOW_POINTS, "grid": grid.name,
        "realism": asdict(realism), "simulator": "batman (Kreidberg 2015) on Pearson et al. 2018's grid"})
