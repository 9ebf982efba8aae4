"""Detector strain from GWOSC HDF5 files: read, whiten with the data's own PSD, cut into sliding windows.

A GWOSC file (``H-H1_LOSC_4_V2-1128678884-32.hdf5``) holds ``strain/Strain``
(dimensionless strain at ``Xspacing`` seconds from GPS ``Xstart``) and
``meta/Detector``. Two files, one per detector, must cover the same GPS
seconds at the same rate; 16 kHz files are decimated to 4096 Hz. The PSD is
estimated from each segment itself (Welch's median), so real noise of any
sensitivity is whitened to unit variance as the simulated training data are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from deepsky.errors import DeepskyError

EDGE_SECONDS = 2.0  # whitening's taper spoils the ends of a segment: they are not searched
MIN_SEGMENT_SECONDS = 8.0  # Welch's PSD needs several 4 s segments


@dataclass
class Strain:
    """One detector's strain: ``values`` (n,) at ``sample_rate_hz`` from GPS second ``gps_start``."""

    detector: str
    gps_start: float
    sample_rate_hz: float
    values: np.ndarray
    path: Path


def is_gwosc_file(path) -> bool:
    """True for an HDF5 file holding ``strain/Strain`` (a GWOSC strain file), without reading the strain."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "strain/Strain" in f
    except (OSError, ValueError, RuntimeError, KeyError, TypeError):
        return False


def read_gwosc(path, sample_rate_hz: int = 4096) -> Strain:
    """The strain of one GWOSC HDF5 file at ``sample_rate_hz`` (decimated from a multiple of it)."""
    import h5py

    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            if "strain/Strain" not in f:
                raise DeepskyError(f"{path}: no strain/Strain dataset; is it a GWOSC strain file?")
            item = f["strain/Strain"]
            values = np.asarray(item[...], np.float64)
            spacing = float(item.attrs.get("Xspacing", 0.0))
            start = float(item.attrs.get("Xstart", f["meta/GPSstart"][()] if "meta/GPSstart" in f else np.nan))
            detector = f["meta/Detector"][()] if "meta/Detector" in f else b""
    except DeepskyError:
        raise
    except (OSError, ValueError, RuntimeError, KeyError, TypeError, AttributeError) as exc:
        raise DeepskyError(f"{path}: cannot read the strain ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    detector = detector.decode() if isinstance(detector, bytes) else str(detector)
    if values.ndim != 1 or not len(values):
        raise DeepskyError(f"{path}: strain/Strain has shape {values.shape}; expected a non-empty series")
    if not (spacing > 0 and np.isfinite(start)):
        raise DeepskyError(f"{path}: strain/Strain lacks a valid Xspacing or Xstart (GPS start)")
    bad = ~np.isfinite(values)
    if bad.any():
        first = start + np.flatnonzero(bad)[0] * spacing
        raise DeepskyError(f"{path}: {int(bad.sum())} strain samples are NaN or infinite (a data gap, from GPS "
                           f"{first:.3f}); give a segment without gaps")
    rate = round(1.0 / spacing)
    if rate != sample_rate_hz:
        if rate % sample_rate_hz:
            raise DeepskyError(f"{path}: strain at {rate} Hz; give {sample_rate_hz} Hz data (or a multiple of it)")
        from scipy.signal import decimate

        values = decimate(values, rate // sample_rate_hz, ftype="fir", zero_phase=True)
    if len(values) < MIN_SEGMENT_SECONDS * sample_rate_hz:
        raise DeepskyError(f"{path}: {len(values) / sample_rate_hz:g} s of strain; at least {MIN_SEGMENT_SECONDS:g} s "
                           "are needed to estimate the noise spectrum")
    return Strain(detector, start, float(sample_rate_hz), values, path)


def read_pair(paths, detectors=("H1", "L1"), sample_rate_hz: int = 4096) -> list[Strain]:
    """One strain per detector in ``detectors``' order, checked to cover the same GPS seconds."""
    paths = [Path(p) for p in paths]
    if len(paths) != len(detectors):
        raise DeepskyError(f"give one GWOSC strain file per detector ({', '.join(detectors)}); received {len(paths)}")
    strains = [read_gwosc(p, sample_rate_hz) for p in paths]
    found = {s.detector: s for s in strains}
    if sorted(found) != sorted(detectors):
        named = ", ".join(f"{s.path.name}: {s.detector or '?'}" for s in strains)
        raise DeepskyError(f"{paths[0]}: the files are from detectors {named}; give one each of {', '.join(detectors)}")
    ordered = [found[d] for d in detectors]
    first = ordered[0]
    for other in ordered[1:]:
        if other.gps_start != first.gps_start or len(other.values) != len(first.values):
            raise DeepskyError(
                f"{other.path}: covers GPS {other.gps_start:.0f} + {len(other.values) / sample_rate_hz:g} s but "
                f"{first.path.name} covers GPS {first.gps_start:.0f} + {len(first.values) / sample_rate_hz:g} s; "
                "give the same stretch of both detectors")
    return ordered


def whitened(strains: list[Strain]) -> np.ndarray:
    """(n, detectors) strain whitened by each detector's own noise spectrum: unit-variance noise."""
    from deepsky.simulate.gravitational_waves import estimate_psd, whiten

    return np.stack([whiten(s.values, s.sample_rate_hz, estimate_psd(s.values, s.sample_rate_hz))
                     for s in strains], axis=-1).astype(np.float32)


def sliding_windows(series: np.ndarray, sample_rate_hz: float, window_seconds: float, stride_seconds: float,
                    edge_seconds: float = EDGE_SECONDS) -> tuple[np.ndarray, np.ndarray]:
    """Windows (k, samples, detectors) every ``stride_seconds``, the segment's ends left out, and their start offsets (s)."""
    window = int(round(window_seconds * sample_rate_hz))
    stride = max(1, int(round(stride_seconds * sample_rate_hz)))
    edge = int(round(edge_seconds * sample_rate_hz))
    last = len(series) - edge - window
    if last < edge:
        raise DeepskyError(f"a segment of {len(series) / sample_rate_hz:g} s leaves no {window_seconds:g} s window "
                           f"once {edge_seconds:g} s are dropped at each end")
    starts = np.arange(edge, last + 1, stride)
    windows = np.lib.stride_tricks.sliding_window_view(series, window, axis=0)[starts]  # (k, detectors, window)
    return np.ascontiguousarray(np.swapaxes(windows, 1, 2)), starts / sample_rate_hz
