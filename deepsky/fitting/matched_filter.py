"""Matched filtering over a template bank: the classical search the Deep Filtering networks are measured against.

Every template is an IMRPhenomD merger of masses (m1, m2) from a grid over
the simulator's ranges, whitened like the data and normalised to unit
energy, in both phases (h+ and its quarter-cycle twin). For each detector
the complex SNR time series is the FFT correlation of the whitened window
with the template (zero-padded, so nothing wraps around); a window's
statistic is the largest network SNR over templates and times,
sqrt(rho_H1^2 + rho_L1^2) with each detector's peak within the light
travel time of the other's, and its masses those of the best template.
"""

from __future__ import annotations

import numpy as np

from deepsky.simulate import gravitational_waves as gw

LIGHT_TRAVEL_SECONDS = 0.010  # H1 to L1


class TemplateBank:
    """Whitened unit-energy templates on a (m1, m2) grid, with their spectra ready for correlation."""

    def __init__(self, masses_msun, detectors: gw.Detectors | None = None, window_samples: int = 4096,
                 step_factor: float | None = None):
        detectors = detectors or gw.Detectors()
        self.masses = np.array([(m1, m2) for m1, m2 in masses_msun], dtype=np.float64)
        self.window = window_samples
        self.size = 2 * window_samples  # zero-padded: a correlation never wraps around
        # ratio of neighbouring masses on the grid: the bank's own resolution
        self.step_factor = step_factor or _grid_step(self.masses)
        # merger near the window's end: the template holds as much inspiral as the window can
        self.merger_sample = int(round(0.9 * window_samples))
        start = (detectors.n - window_samples) // 2
        spectra = []
        for m1, m2 in self.masses:
            hp, hc, peak = gw.polarisations(m1, m2)
            placed = gw._placed(hp, peak, start + self.merger_sample, detectors.n)
            whitened = detectors.whiten(placed)[start : start + window_samples]
            whitened /= np.linalg.norm(whitened)
            spectra.append(np.conj(np.fft.fft(whitened, self.size)))
        self.spectra = np.array(spectra)  # (templates, size), conjugated

    def statistic(self, window: np.ndarray) -> tuple[float, tuple[float, float]]:
        """(network SNR, (m1, m2) of the best template) for one whitened (samples, detectors) window."""
        best = self._network_snr(self._snr_series(window)).max(axis=1)
        index = int(np.argmax(best))
        return float(best[index]), tuple(self.masses[index])

    def best_match(self, window: np.ndarray) -> dict:
        """The best template's network SNR, each detector's SNR and merger sample, and masses with 68% ranges.

        Merger samples count from the window's start (the template's merger
        shifted by the correlation's lag): ``merger_sample`` for the network
        peak (the second detector's within the light travel time of the
        first's), ``own_merger_sample`` for each detector's own loudest lag. The mass ranges span the templates
        whose network SNR^2 is within 2.3 of the best one's (a 68% region in
        two parameters for Gaussian noise), widened to the bank's own spacing.
        """
        series = self._snr_series(window)
        network = self._network_snr(series)
        per_template = network.max(axis=1)
        index = int(np.argmax(per_template))
        lag0 = int(np.argmax(network[index]))
        reach = int(round(LIGHT_TRAVEL_SECONDS * gw.SAMPLE_RATE_HZ))
        out = {"snr": float(per_template[index]), "detector_snr": [], "merger_sample": []}
        lags = [lag0]
        if len(series) > 1:
            around = np.arange(lag0 - reach, lag0 + reach + 1) % self.size
            lags.append(int(around[np.argmax(series[1][index, around])]))
        for k, lag in enumerate(lags):
            out["detector_snr"].append(float(series[k][index, lag]))
            out["merger_sample"].append(self._merger_at(lag))
        # each detector's own loudest lag for that template, searched over the whole window: a
        # coincidence test must not take the second detector's peak from within reach of the first's
        out["own_merger_sample"] = [self._merger_at(int(np.argmax(rates[index]))) for rates in series]
        close = per_template**2 >= per_template[index] ** 2 - 2.3
        for j, name in enumerate(("m1", "m2")):
            values = self.masses[close, j]
            spacing = self.masses[index, j] * (self.step_factor - 1) / 2
            out[name] = float(self.masses[index, j])
            out[f"{name}_err"] = float(max((values.max() - values.min()) / 2, spacing))
        return out

    def _merger_at(self, lag: int) -> int:
        """The merger's sample in the window for a correlation peak at index ``lag`` (negative lags wrap)."""
        return self.merger_sample + (lag if lag < self.size // 2 else lag - self.size)

    def _network_snr(self, series: list[np.ndarray]) -> np.ndarray:
        """(templates, lags) network SNR: H1 at each lag with L1's best within the light travel time."""
        if len(series) == 1:
            return series[0]
        reach = int(round(LIGHT_TRAVEL_SECONDS * gw.SAMPLE_RATE_HZ))
        return np.sqrt(series[0] ** 2 + _running_max(series[1], reach) ** 2)

    def _snr_series(self, window: np.ndarray) -> list[np.ndarray]:
        """Per detector, the (templates, lags) SNR magnitude of every template at every lag, both phases."""
        rates = []
        for k in range(window.shape[1]):
            data = np.fft.fft(window[:, k].astype(np.float64), self.size)
            # the analytic correlation: both phases of each template at once
            product = data[None, :] * self.spectra
            product[:, self.size // 2 + 1 :] = 0.0
            product[:, 1 : self.size // 2] *= 2.0
            rates.append(np.abs(np.fft.ifft(product, axis=1)))  # (templates, lags): every lag, both signs
        return rates

    def search(self, windows: np.ndarray, progress=None) -> tuple[np.ndarray, np.ndarray]:
        """Statistics (n,) and best-template masses (n, 2) of whitened windows (n, samples, detectors)."""
        scores, masses = np.empty(len(windows)), np.empty((len(windows), 2))
        for i, window in enumerate(windows):
            scores[i], masses[i] = self.statistic(window)
            if progress is not None:
                progress(1)
        return scores, masses


def default_bank(count_per_axis: int = 8) -> list[tuple[float, float]]:
    """A grid of (m1 >= m2) pairs, log-spaced over the simulator's masses, within its mass ratio."""
    grid = np.geomspace(*gw.MASS_RANGE_MSUN, count_per_axis)
    return [(m1, m2) for m1 in grid for m2 in grid if m2 <= m1 <= gw.MAX_MASS_RATIO * m2]


def _grid_step(masses: np.ndarray) -> float:
    """The ratio between neighbouring distinct masses of a log grid (1.2 for a single template)."""
    values = np.unique(np.round(masses.ravel(), 9))
    return float(np.median(values[1:] / values[:-1])) if len(values) > 1 else 1.2


def _running_max(values: np.ndarray, reach: int) -> np.ndarray:
    """The largest value within ``reach`` lags either side, along the last axis."""
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(values, size=2 * reach + 1, axis=-1, mode="nearest")
