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

    def __init__(self, masses_msun, detectors: gw.Detectors | None = None, window_samples: int = 4096):
        detectors = detectors or gw.Detectors()
        self.masses = np.array([(m1, m2) for m1, m2 in masses_msun], dtype=np.float64)
        self.window = window_samples
        self.size = 2 * window_samples  # zero-padded: a correlation never wraps around
        start = (detectors.n - window_samples) // 2
        spectra = []
        for m1, m2 in self.masses:
            hp, hc, peak = gw.polarisations(m1, m2)
            # merger near the window's end: the template holds as much inspiral as the window can
            placed = gw._placed(hp, peak, start + 0.9 * window_samples, detectors.n)
            whitened = detectors.whiten(placed)[start : start + window_samples]
            whitened /= np.linalg.norm(whitened)
            spectra.append(np.conj(np.fft.fft(whitened, self.size)))
        self.spectra = np.array(spectra)  # (templates, size), conjugated

    def statistic(self, window: np.ndarray) -> tuple[float, tuple[float, float]]:
        """(network SNR, (m1, m2) of the best template) for one whitened (samples, detectors) window."""
        rates = []
        for k in range(window.shape[1]):
            data = np.fft.fft(window[:, k].astype(np.float64), self.size)
            # the analytic correlation: both phases of each template at once
            product = data[None, :] * self.spectra
            product[:, self.size // 2 + 1 :] = 0.0
            product[:, 1 : self.size // 2] *= 2.0
            rates.append(np.abs(np.fft.ifft(product, axis=1)))  # (templates, lags): every lag, both signs
        if len(rates) == 1:
            best = rates[0].max(axis=1)
        else:
            reach = int(round(LIGHT_TRAVEL_SECONDS * gw.SAMPLE_RATE_HZ))
            partner = _running_max(rates[1], reach)
            best = np.sqrt(rates[0] ** 2 + partner**2).max(axis=1)
        index = int(np.argmax(best))
        return float(best[index]), tuple(self.masses[index])

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


def _running_max(values: np.ndarray, reach: int) -> np.ndarray:
    """The largest value within ``reach`` lags either side, along the last axis."""
    from scipy.ndimage import maximum_filter1d

    return maximum_filter1d(values, size=2 * reach + 1, axis=-1, mode="nearest")
