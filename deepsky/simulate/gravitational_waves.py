"""Binary black hole mergers in whitened LIGO Hanford and Livingston strain (after George & Huerta 2018).

Waveforms come from lalsimulation's IMRPhenomD in the time domain (its
reduced-order models need data files that are not distributed). Each signal
has masses m1 >= m2 (solar masses, each 5-75, mass ratio 1-10), a random
sky position, polarisation angle, inclination and phase, and is projected on
H1 and L1 with their antenna patterns and arrival-time difference (at most
10 ms). Noise is coloured Gaussian noise of the aLIGO design sensitivity
(zero-detuned high power), drawn over ``NOISE_SECONDS`` so that the one-second
window is cut from its middle, then whitened by the same PSD: whitened noise
has unit variance per sample. The SNR is the optimal matched-filter SNR of
the signal inside the window, summed in quadrature over the two detectors,
and is set exactly by scaling the signal.
"""

from __future__ import annotations

import numpy as np

from deepsky.errors import DeepskyError

SAMPLE_RATE_HZ = 4096
WINDOW_SECONDS = 1.0
NOISE_SECONDS = 4.0  # noise is coloured and whitened over this stretch; the window is its middle
F_LOWER_HZ = 20.0  # waveforms start and whitened data keep frequencies from here
DETECTORS = ("H1", "L1")
MASS_RANGE_MSUN = (5.0, 75.0)
MAX_MASS_RATIO = 10.0
MERGER_RANGE = (0.2, 0.9)  # where in the window the merger (at the Earth's centre) falls, as a fraction
REFERENCE_GPS = 1_126_259_462  # the sky turns with time; a fixed epoch, the sky position random


def design_psd(frequencies_hz) -> np.ndarray:
    """One-sided aLIGO design noise PSD (1/Hz) at ``frequencies_hz``; below 10 Hz held at its 10 Hz value."""
    import lalsimulation

    frequencies = np.maximum(np.atleast_1d(np.asarray(frequencies_hz, dtype=np.float64)), 10.0)
    return np.array([lalsimulation.SimNoisePSDaLIGOZeroDetHighPower(f) for f in frequencies])


class Detectors:
    """H1 and L1 on a fixed time grid: the PSD of every FFT bin, antenna patterns and delays."""

    def __init__(self, sample_rate_hz: int = SAMPLE_RATE_HZ, noise_seconds: float = NOISE_SECONDS):
        import lal

        self.sample_rate = sample_rate_hz
        self.n = int(round(noise_seconds * sample_rate_hz))
        self.frequencies = np.fft.rfftfreq(self.n, 1.0 / sample_rate_hz)
        self.psd = design_psd(self.frequencies)
        self.band = self.frequencies >= F_LOWER_HZ
        index = {"H1": lal.LALDetectorIndexLHODIFF, "L1": lal.LALDetectorIndexLLODIFF}
        self._detectors = [lal.CachedDetectors[index[name]] for name in DETECTORS]
        self._gmst = lal.GreenwichMeanSiderealTime(REFERENCE_GPS)

    def response(self, ra: float, dec: float, psi: float) -> list[tuple[float, float, float]]:
        """``(F+, Fx, delay in seconds from the Earth's centre)`` for each detector."""
        import lal

        out = []
        for detector in self._detectors:
            plus, cross = lal.ComputeDetAMResponse(detector.response, ra, dec, psi, self._gmst)
            out.append((plus, cross, lal.TimeDelayFromEarthCenter(detector.location, ra, dec, REFERENCE_GPS)))
        return out

    def coloured_noise(self, rng) -> np.ndarray:
        """One stretch of Gaussian noise with the design PSD, (n,) strain."""
        scale = np.sqrt(self.n * self.sample_rate * self.psd / 4.0)
        spectrum = (rng.standard_normal(len(scale)) + 1j * rng.standard_normal(len(scale))) * scale
        spectrum[0] = 0.0
        return np.fft.irfft(spectrum, self.n)

    def whiten(self, strain: np.ndarray) -> np.ndarray:
        """Strain divided by the noise amplitude spectrum, below ``F_LOWER_HZ`` removed: unit-variance noise."""
        return whiten(strain, self.sample_rate, self.psd)

    def optimal_snr(self, signal: np.ndarray) -> float:
        """The optimal matched-filter SNR of ``signal`` (strain over the stretch) against the design noise."""
        transform = np.fft.rfft(signal) / self.sample_rate
        df = self.sample_rate / self.n
        return float(np.sqrt(4.0 * np.sum(np.abs(transform[self.band]) ** 2 / self.psd[self.band]) * df))


def whiten(strain: np.ndarray, sample_rate_hz: float, psd: np.ndarray, f_lower_hz: float = F_LOWER_HZ) -> np.ndarray:
    """``strain`` (n,) divided by the noise amplitude spectrum, frequencies below ``f_lower_hz`` removed.

    ``psd`` is the one-sided noise PSD (1/Hz) at the ``n // 2 + 1`` frequencies
    of ``np.fft.rfftfreq(n, 1 / sample_rate_hz)``. Gaussian noise of that PSD
    comes out with unit variance per sample. A Tukey window (10%) tapers the
    ends, which are not to be analysed.
    """
    from scipy.signal.windows import tukey

    n = len(strain)
    band = np.fft.rfftfreq(n, 1.0 / sample_rate_hz) >= f_lower_hz
    spectrum = np.fft.rfft(strain * tukey(n, 0.1))
    spectrum = np.where(band, spectrum / np.sqrt(n * sample_rate_hz * np.asarray(psd) / 2.0), 0.0)
    return np.fft.irfft(spectrum, n) * np.sqrt(n / band.mean())


def estimate_psd(strain: np.ndarray, sample_rate_hz: float, segment_seconds: float = 4.0) -> np.ndarray:
    """The one-sided noise PSD (1/Hz) of ``strain`` at its own rfft frequencies: Welch's median over segments.

    The median of Hann-windowed, half-overlapping segments of
    ``segment_seconds`` resists a loud signal or glitch in the data; it is
    interpolated onto the frequency grid of the whole stretch.
    """
    from scipy.signal import welch

    per_segment = int(round(segment_seconds * sample_rate_hz))
    frequencies, psd = welch(strain, fs=sample_rate_hz, nperseg=per_segment, average="median")
    grid = np.fft.rfftfreq(len(strain), 1.0 / sample_rate_hz)
    return np.maximum(np.interp(grid, frequencies, psd), np.finfo(np.float64).tiny)


def polarisations(m1_msun: float, m2_msun: float, inclination: float = 0.0, phase: float = 0.0,
                  sample_rate_hz: int = SAMPLE_RATE_HZ) -> tuple[np.ndarray, np.ndarray, int]:
    """IMRPhenomD ``(h+, hx, merger sample)`` at 1 Mpc from ``F_LOWER_HZ``; the merger is the amplitude peak."""
    import lal
    import lalsimulation

    if not (m1_msun > 0 and m2_msun > 0):
        raise DeepskyError(f"masses must be positive; received {m1_msun}, {m2_msun}")
    plus, cross = lalsimulation.SimInspiralChooseTDWaveform(
        m1_msun * lal.MSUN_SI, m2_msun * lal.MSUN_SI, 0, 0, 0, 0, 0, 0, 1e6 * lal.PC_SI, inclination, phase,
        0, 0, 0, 1.0 / sample_rate_hz, F_LOWER_HZ, F_LOWER_HZ, None, lalsimulation.IMRPhenomD)
    hp, hc = np.array(plus.data.data), np.array(cross.data.data)
    return hp, hc, int(np.argmax(hp**2 + hc**2))


def draw_masses(rng) -> tuple[float, float]:
    """m1 >= m2 (solar masses), each in ``MASS_RANGE_MSUN``, m1/m2 <= ``MAX_MASS_RATIO``."""
    low, high = MASS_RANGE_MSUN
    while True:
        m1, m2 = sorted(rng.uniform(low, high, 2), reverse=True)
        if m1 / m2 <= MAX_MASS_RATIO:
            return float(m1), float(m2)


def merger_example(detectors: Detectors, rng, m1: float, m2: float, snr: float,
                   noise: bool = True, merger_range: tuple[float, float] = MERGER_RANGE) -> tuple[np.ndarray, dict]:
    """One window of whitened (H1, L1) strain holding a merger of network SNR ``snr``: ((samples, 2), parameters).

    ``noise=False`` gives the whitened signal alone (the template a matched filter would use).
    """
    ra, dec = rng.uniform(0, 2 * np.pi), np.arcsin(rng.uniform(-1, 1))
    psi, inclination, phase = rng.uniform(0, np.pi), np.arccos(rng.uniform(-1, 1)), rng.uniform(0, 2 * np.pi)
    hp, hc, peak = polarisations(m1, m2, inclination, phase, detectors.sample_rate)
    window = int(round(WINDOW_SECONDS * detectors.sample_rate))
    start = (detectors.n - window) // 2
    merger = start + rng.uniform(*merger_range) * window  # at the Earth's centre, in samples
    signals = []
    for plus, cross, delay in detectors.response(ra, dec, psi):
        shifted = _placed(plus * hp + cross * hc, peak, merger + delay * detectors.sample_rate, detectors.n)
        inside = np.zeros(detectors.n)
        inside[start : start + window] = shifted[start : start + window]
        signals.append((shifted, detectors.optimal_snr(inside)))
    network = np.sqrt(sum(s**2 for _, s in signals))
    scale = snr / network if network > 0 else 0.0
    strain = np.stack([detectors.whiten((detectors.coloured_noise(rng) if noise else 0.0) + scale * shifted)
                       [start : start + window] for shifted, _ in signals], axis=-1)
    return strain.astype(np.float32), {"m1": m1, "m2": m2, "snr": snr, "ra": ra, "dec": dec, "psi": psi,
                                       "merger_s": (merger - start) / detectors.sample_rate,
                                       "distance_mpc": 1.0 / scale if scale else np.inf}


def noise_example(detectors: Detectors, rng) -> np.ndarray:
    """One window of whitened (H1, L1) noise alone, (samples, 2)."""
    window = int(round(WINDOW_SECONDS * detectors.sample_rate))
    start = (detectors.n - window) // 2
    return np.stack([detectors.whiten(detectors.coloured_noise(rng))[start : start + window]
                     for _ in DETECTORS], axis=-1).astype(np.float32)


def whitened_noise(rng, n: int, samples: int, channels: int, sample_rate_hz: float = SAMPLE_RATE_HZ,
                   f_lower_hz: float = F_LOWER_HZ) -> np.ndarray:
    """(n, samples, channels) whitened Gaussian noise as the simulator makes it: unit variance, nothing below
    ``f_lower_hz``; drawn over twice the length and cut from the middle, so that nothing wraps around."""
    long = 2 * samples
    spectrum = np.fft.rfft(rng.standard_normal((n, long, channels)), axis=1)
    band = np.fft.rfftfreq(long, 1.0 / sample_rate_hz) >= f_lower_hz
    spectrum[:, ~band] = 0.0
    noise = np.fft.irfft(spectrum, long, axis=1)[:, samples // 2 : samples // 2 + samples]
    return (noise / np.sqrt(band.mean())).astype(np.float32)


def mix_fresh_noise(windows: np.ndarray, rng, max_weight: float = 0.6) -> np.ndarray:
    """Whitened windows with a fresh noise realisation mixed in: sqrt(1 - a^2) x + a n, a uniform in [0, max_weight].

    The noise keeps unit variance and a merger's SNR is scaled by sqrt(1 - a^2)
    (at least 0.8 for the default): a training batch never repeats its noise.
    """
    weight = rng.uniform(0.0, max_weight, len(windows)).astype(np.float32)[:, None, None]
    noise = whitened_noise(rng, len(windows), windows.shape[1], windows.shape[2])
    return (np.sqrt(1.0 - weight**2) * windows + weight * noise).astype(np.float32)


def _placed(waveform: np.ndarray, peak: int, at_sample: float, n: int) -> np.ndarray:
    """``waveform`` on an ``n``-sample grid with its sample ``peak`` at fractional sample ``at_sample``."""
    grid = np.arange(n) - at_sample + peak
    return np.interp(grid, np.arange(len(waveform)), waveform, left=0.0, right=0.0)


CHUNK_WINDOWS = 256  # windows made per job, each chunk with its own seed


def make_gravitational_waves(n: int, seed: int = 0, snr_range: tuple[float, float] = (5.0, 20.0),
                             signal_fraction: float = 0.5, merger_range: tuple[float, float] = MERGER_RANGE,
                             progress=None, workers: int | None = None):
    """``n`` one-second windows of whitened (H1, L1) strain, (n, 4096, 2): mergers and noise alone.

    Labels: 1 merger, 0 noise. Objects: ``m1``, ``m2`` (solar masses),
    ``snr`` (network optimal SNR, uniform in ``snr_range``), ``merger_s``
    (seconds into the window, at the Earth's centre, uniform over
    ``merger_range`` as fractions of the window), ``ra``, ``dec``, ``psi``
    (radians) and ``distance_mpc``; NaN for noise windows. The same seed
    gives the same bytes whatever the number of workers.
    """
    from deepsky.parallel import simulate_in_chunks

    if n < 1:
        raise DeepskyError(f"the number of windows must be positive; received {n}")
    return simulate_in_chunks(_make_chunk, n, seed, CHUNK_WINDOWS, tuple(snr_range), signal_fraction,
                              tuple(merger_range), progress=progress, workers=workers)


def _make_chunk(job):
    from deepsky.data.store import Dataset

    n, seed, chunk, snr_range, signal_fraction, merger_range = job
    rng = np.random.default_rng(np.random.SeedSequence([seed, 15, chunk]))
    detectors = Detectors()
    labels = (rng.uniform(size=n) < signal_fraction).astype(np.int64)
    names = ("m1", "m2", "snr", "merger_s", "ra", "dec", "psi", "distance_mpc")
    columns = {name: np.full(n, np.nan) for name in names}
    windows = np.empty((n, int(round(WINDOW_SECONDS * SAMPLE_RATE_HZ)), len(DETECTORS)), np.float32)
    for i in range(n):
        if labels[i]:
            m1, m2 = draw_masses(rng)
            windows[i], parameters = merger_example(detectors, rng, m1, m2, rng.uniform(*snr_range),
                                                    merger_range=merger_range)
            for name in names:
                columns[name][i] = parameters[name]
        else:
            windows[i] = noise_example(detectors, rng)
    meta = {"units": "whitened strain", "sample_rate_hz": SAMPLE_RATE_HZ, "detectors": list(DETECTORS),
            "f_lower_hz": F_LOWER_HZ, "approximant": "IMRPhenomD", "psd": "aLIGOZeroDetHighPower",
            "classes": ["noise", "merger"]}
    return Dataset(inputs=windows, labels=labels, objects=columns, meta=meta)
