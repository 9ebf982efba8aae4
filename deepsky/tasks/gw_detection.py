"""Binary black hole mergers in LIGO strain: George & Huerta's Deep Filtering against matched filtering.

Is there a merger in this second of whitened H1 and L1 strain
(:mod:`deepsky.simulate.gravitational_waves`)? The network is trained on
network SNRs of 4-20 with the paper's curriculum (high SNR first: the
lowest SNR admitted falls over the first half of the epochs) and scored on
SNRs of 2-16, as sensitivity against SNR at a false-alarm probability of
0.5% per window, the paper's figure, beside a matched filter over an
IMRPhenomD template bank on the same windows.

SNR here is the optimal SNR of the two detectors together (George & Huerta
quote one detector's: a network SNR of 10 is about 7 in each detector).

``deepsky predict RUN H1.hdf5 L1.hdf5 -o TRIGGERS.csv`` searches real GWOSC
strain: each segment is whitened by its own noise spectrum, 1 s windows
every ``STRIDE_SECONDS`` are scored, and windows above a threshold set on
simulated Gaussian noise for a false-alarm rate of one per 10 minutes
(``THRESHOLD_NOISE_SEGMENTS`` segments of 32 s treated exactly as real ones) become triggers, one per cluster of overlapping
windows. Each trigger is matched-filtered with a dense template bank: its
GPS time (the merger at H1), SNR and masses (detector frame) come from the
best template, and it is kept only when H1's and L1's own loudest peaks
for that template lie within the light travel time between the sites.
"""

from __future__ import annotations

import time

import numpy as np

from deepsky.data.store import CHUNK_ROWS
from deepsky.metrics import binary_metrics
from deepsky.tasks.base import Headline, SimulatedTask
from deepsky.tasks.registry import register_task

TRAIN_SNR = (4.0, 20.0)
TEST_SNR = (2.0, 16.0)
CURRICULUM_START_SNR = 16.0  # the first epoch's lowest SNR; it falls to TRAIN_SNR[0] by half the epochs
FALSE_ALARM_PROBABILITY = 0.005  # per 1 s window: the paper's operating point
SNR_BIN_EDGES = tuple(float(v) for v in np.arange(2.0, 17.0, 1.0))
BANK_PER_AXIS = 10  # the baseline's template bank: log grid of m1, m2 (:func:`default_bank`)
DENSE_BANK_PER_AXIS = 24  # triggers in real strain: the masses from a finer bank
STRIDE_SECONDS = 0.125
THRESHOLD_NOISE_SEGMENTS = 64  # 32 s segments of simulated noise setting the real-strain threshold (1,792 s searched)
FALSE_ALARM_RATE_HZ = 1 / 600  # real-strain triggers: Gaussian noise passes the threshold once per 10 minutes
SEGMENT_SECONDS = 32.0
COINCIDENCE_SECONDS = 0.012  # the 10 ms light travel time H1-L1, plus a sample or two of timing error


@register_task
class GWDetection(SimulatedTask):
    name = "gw-detection"
    description = ("George & Huerta (2018) Deep Filtering: binary black hole mergers in whitened H1/L1 strain, "
                   "1-D CNN against matched filtering over a template bank; searches GWOSC strain files")
    classes = ("noise", "merger")
    positive_class = "merger"
    default_model = "george-huerta-shallow"
    default_train_size = 40000
    default_test_size = 6000
    default_epochs = 30
    default_batch_size = 64
    default_learning_rate = 1e-3
    augment = True  # a merger's sign and the detectors' order can change, and fresh noise come in, without changing it
    baseline_name = "random forest on window statistics"
    initialised_from = ("gw-masses",)  # the paper started its classifier from the trained predictor
    default_data_description = "simulating mergers in whitened LIGO noise"
    paper = {
        "citation": "George & Huerta 2018, Phys. Lett. B 778, 64 (arXiv:1711.03121); Phys. Rev. D 97, 044039",
        "data": "1 s of whitened aLIGO design noise at 8192 Hz, EOBNRv2 binary black holes of 5-75 Msun, "
                "trained with SNR falling from high to low",
        "sensitivity_snr_10": 1.0,
        "note": "At a false-alarm probability of 0.5% the shallow and deep networks found 100% of signals with "
                "(single-detector) SNR >= 10, matching matched filtering over a template bank.",
    }
    headline = (
        Headline("sensitivity_snr_10", "Sensitivity at SNR ≥ 10 (FAP 0.5%)", paper=1.0),
        Headline("classical.matched_filter.sensitivity_snr_10", "Matched filter: sensitivity at SNR ≥ 10"),
        Headline("sensitivity_snr_6_8", "Sensitivity at SNR 6-8 (FAP 0.5%)"),
        Headline("classical.matched_filter.sensitivity_snr_6_8", "Matched filter: sensitivity at SNR 6-8"),
        Headline("roc_auc", "ROC AUC"),
        Headline("speedup_over_matched_filter", "Speed-up over the matched filter per second of strain", digits=0),
        Headline("n", "Test windows", digits=0),
    )

    # -- data ----------------------------------------------------------------------
    def simulate(self, n, seed, progress=None):
        """Half mergers of network SNR 4-20, half noise alone."""
        from deepsky.simulate.gravitational_waves import make_gravitational_waves

        return make_gravitational_waves(n, seed, snr_range=TRAIN_SNR, progress=progress)

    def simulate_test(self, n, seed, progress=None):
        """Half mergers of network SNR 2-16, half noise alone: the range of the paper's figure."""
        from deepsky.simulate.gravitational_waves import make_gravitational_waves

        return make_gravitational_waves(n, seed, snr_range=TEST_SNR, progress=progress)

    def epoch_rows(self, train, epoch, epochs):
        """George & Huerta's curriculum: mergers above an SNR that falls each epoch, with as many noise windows."""
        snr = train.objects.get("snr")
        if snr is None:
            return None
        floor = curriculum_floor(epoch, epochs)
        labels = np.asarray(train.labels)
        signals = np.flatnonzero((labels == 1) & (np.nan_to_num(np.asarray(snr, np.float64)) >= floor))
        noise = np.flatnonzero(labels == 0)
        if len(signals) < len(np.flatnonzero(labels == 1)):
            rng = np.random.default_rng(np.random.SeedSequence([epoch, 15]))
            noise = np.sort(rng.choice(noise, min(len(noise), len(signals)), replace=False))
        return np.concatenate([signals, noise])

    def augmentation(self, config):
        return strain_augmentation()

    # -- classical baseline --------------------------------------------------------
    def baseline_features(self, inputs, state):
        """Each detector's peak power in 8 bands and its largest excursion: what an excess-power search sees."""
        x = np.asarray(inputs, np.float64)
        spectrum = np.abs(np.fft.rfft(x, axis=1)) ** 2  # (n, freqs, detectors)
        bands = np.array_split(np.arange(spectrum.shape[1]), 8)
        power = np.stack([spectrum[:, b].mean(axis=1) for b in bands], axis=1).reshape(len(x), -1)
        peak = np.abs(x).max(axis=1)
        return np.concatenate([np.log(power), peak], axis=1).astype(np.float32)

    # -- evaluation ----------------------------------------------------------------
    def metrics(self, test, predicted):
        """ROC AUC, and sensitivity per SNR at a 0.5% false-alarm probability set on the test's noise windows."""
        probabilities = np.asarray(predicted, np.float64)
        out = binary_metrics(test.labels, probabilities[:, 1], self.classes)
        out.update(sensitivity_by_snr(test.labels, ranking_statistic(probabilities), test.objects.get("snr")))
        return out

    def extra_metrics(self, model, test, metrics, stage):
        """The matched filter on the same windows, and both methods' seconds per second of strain."""
        from deepsky.predict import predict_array

        windows = np.asarray(test.inputs)
        timed = windows[:2048]
        predict_array(model, timed[:256])
        start = time.perf_counter()
        predict_array(model, timed)
        network_seconds = (time.perf_counter() - start) / len(timed)
        classical = matched_filter_metrics(test, stage)
        out = {"classical": {"matched_filter": classical}, "network_seconds_per_window": network_seconds,
               "stride_seconds": STRIDE_SECONDS}
        # a search slides the network every STRIDE_SECONDS; the filter's correlation covers every lag at once
        network_per_strain_second = network_seconds / STRIDE_SECONDS
        out["network_seconds_per_strain_second"] = network_per_strain_second
        out["speedup_over_matched_filter"] = classical["seconds_per_window"] / network_per_strain_second
        return out

    def figures(self):
        from deepsky.report.figures import FigureSpec

        return [FigureSpec(
            "sensitivity_vs_snr", "Sensitivity against SNR at a false-alarm probability of 0.5%",
            "George & Huerta's figure: the fraction of mergers found in each bin of network optimal SNR when the "
            "threshold lets 0.5% of noise-only windows through (set on the test's own noise windows, for the network "
            "and for the matched filter over a template bank alike). The paper found 100% above SNR 10 (one "
            "detector's SNR; a network SNR of 10 is about 7 per detector). The network was trained on SNR 4-20.",
            plot_sensitivity)]

    # -- real strain ---------------------------------------------------------------
    def input_chunks(self, inputs, contract, catalog=None, units="auto", rows=CHUNK_ROWS):
        """Two GWOSC strain files (H1, L1) as one part: whitened, 1 s windows every ``STRIDE_SECONDS``; or a data set."""
        from deepsky.data.strain import is_gwosc_file, read_pair, sliding_windows, whitened

        if not any(is_gwosc_file(p) for p in inputs):
            yield from super().input_chunks(inputs, contract, catalog, units, rows)
            return
        strains = read_pair(inputs, detectors=tuple(contract.get("detectors") or ("H1", "L1")))
        series = whitened(strains)
        rate = strains[0].sample_rate_hz
        windows, offsets = sliding_windows(series, rate, contract["input_shape"][0] / rate, STRIDE_SECONDS)
        gps = strains[0].gps_start + offsets
        yield windows, np.round(gps, 4), None, {"units": "whitened strain", "strain": series, "windows": windows,
                                                "gps_start": strains[0].gps_start, "sample_rate_hz": rate}

    def contract(self, data):
        return {**super().contract(data), "detectors": list(data.meta.get("detectors", ["H1", "L1"])),
                "sample_rate_hz": data.meta.get("sample_rate_hz")}

    def finish_predictions(self, model, columns, info, contract):
        """Real strain: triggers above the simulated-noise threshold, coincident in H1 and L1, one row each."""
        if "strain" not in info:
            return columns
        from deepsky.predict import predict_array

        # from both probabilities again: 1 - p(merger) in float32 loses the loud windows' ranking
        statistic = ranking_statistic(predict_array(model, info["windows"], batch_size=256))
        threshold, _ = noise_threshold(model, contract)
        return triggers(columns["id"], columns["p_merger"], statistic, threshold, info)


def strain_augmentation():
    """A merger's sign and the detectors' order changed at random (each half the windows), and fresh noise mixed in."""
    from deepsky.data.augment import Augmentation, series_augmentation
    from deepsky.simulate.gravitational_waves import mix_fresh_noise

    flips = series_augmentation(reverse=False, negate=True, swap_channels=True)

    def apply(x, y, rng):
        x, y = flips.apply(x, y, rng)
        return mix_fresh_noise(np.asarray(x, np.float32), rng), y

    return Augmentation("sign, detector order, fresh noise", apply)


def curriculum_floor(epoch: int, epochs: int) -> float:
    """The lowest SNR epoch ``epoch`` (from 0) trains on: from ``CURRICULUM_START_SNR`` down to the training range's.

    A run of one epoch has no curriculum: it trains on every SNR.
    """
    if epochs <= 1:
        return TRAIN_SNR[0]
    ramp = max(1, epochs // 2)
    fraction = min(1.0, epoch / ramp)
    return CURRICULUM_START_SNR + fraction * (TRAIN_SNR[0] - CURRICULUM_START_SNR)


def ranking_statistic(probabilities: np.ndarray) -> np.ndarray:
    """log p(merger) - log p(noise): a window ranking that does not saturate where float32 probabilities reach 1."""
    p = np.asarray(probabilities, np.float64)
    return np.log(np.maximum(p[:, 1], 1e-300)) - np.log(np.maximum(p[:, 0], 1e-300))


def sensitivity_by_snr(labels, statistic, snr, false_alarm_probability: float = FALSE_ALARM_PROBABILITY,
                       edges=SNR_BIN_EDGES) -> dict:
    """Mergers found per SNR bin when the threshold passes ``false_alarm_probability`` of the noise windows.

    The threshold is the statistic's (1 - FAP) quantile over the noise
    windows (``labels == 0``), taken at the next value up so that at most that
    fraction pass.
    """
    labels = np.asarray(labels)
    statistic = np.asarray(statistic, np.float64)
    noise = np.sort(statistic[labels == 0])
    if not len(noise) or snr is None:
        return {}
    threshold = noise[min(len(noise) - 1, int(np.ceil((1 - false_alarm_probability) * len(noise))) - 1)]
    found = statistic > threshold
    snr = np.asarray(snr, np.float64)
    signal = labels == 1
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        inside = signal & (snr >= low) & (snr < high)
        if inside.any():
            rows.append({"snr": (low + high) / 2, "n": int(inside.sum()), "sensitivity": float(found[inside].mean())})

    def rate(inside):
        return float(found[inside].mean()) if inside.any() else None

    return {"false_alarm_probability": false_alarm_probability, "threshold": float(threshold),
            "false_alarm_rate_measured": float(found[labels == 0].mean()), "by_snr": rows,
            "sensitivity_snr_10": rate(signal & (snr >= 10)),
            "sensitivity_snr_6_8": rate(signal & (snr >= 6) & (snr < 8))}


def matched_filter_metrics(test, stage=None, bank_per_axis: int = BANK_PER_AXIS) -> dict:
    """The template-bank matched filter on ``test``'s windows: sensitivity per SNR, masses and seconds per window."""
    from deepsky.fitting.matched_filter import TemplateBank, default_bank

    stage = stage or (lambda text: None)
    masses = default_bank(bank_per_axis)
    stage(f"building a bank of {len(masses)} IMRPhenomD templates")
    bank = TemplateBank(masses)
    stage(f"matched-filtering {len(test)} windows")
    start = time.perf_counter()
    statistic, best = bank.search(np.asarray(test.inputs))
    seconds = (time.perf_counter() - start) / max(len(test), 1)
    labels = np.asarray(test.labels)
    out = {"name": f"matched filter ({len(masses)} templates)", "templates": len(masses),
           "seconds_per_window": seconds, "n": int(len(test))}
    if 0 < labels.sum() < len(labels):
        from sklearn.metrics import roc_auc_score

        out["roc_auc"] = float(roc_auc_score(labels, statistic))
    out.update(sensitivity_by_snr(labels, statistic, test.objects.get("snr")))
    return out


def noise_threshold(model, contract, segments: int = THRESHOLD_NOISE_SEGMENTS, seed: int = 20_151_012,
                    false_alarm_rate_hz: float = FALSE_ALARM_RATE_HZ) -> tuple[float, float]:
    """(threshold, seconds searched): the statistic that simulated Gaussian noise exceeds at ``false_alarm_rate_hz``.

    Each segment is 32 s of coloured aLIGO noise in H1 and L1, whitened by
    its own estimated PSD and cut into windows exactly as real strain is.
    The noise's triggers are the windows loudest within 1 s either way; the
    threshold is the (k+1)-th loudest of them, k = seconds searched x rate,
    so that at most k noise triggers pass in that time.
    """
    from scipy.ndimage import maximum_filter1d

    from deepsky.data.strain import EDGE_SECONDS, sliding_windows
    from deepsky.predict import predict_array
    from deepsky.simulate.gravitational_waves import Detectors, estimate_psd, whiten

    rate = int(contract.get("sample_rate_hz") or 4096)
    detectors = Detectors(rate, SEGMENT_SECONDS)
    rng = np.random.default_rng(seed)
    peaks, searched = [], 0.0
    window_seconds = contract["input_shape"][0] / rate
    reach = int(round(1.0 / STRIDE_SECONDS))
    for _ in range(segments):
        series = np.stack([whiten(x, rate, estimate_psd(x, rate))
                           for x in (detectors.coloured_noise(rng) for _ in range(2))], -1).astype(np.float32)
        windows, _ = sliding_windows(series, rate, window_seconds, STRIDE_SECONDS)
        statistic = ranking_statistic(predict_array(model, windows, batch_size=256))
        peaks.append(statistic[statistic == maximum_filter1d(statistic, 2 * reach + 1, mode="nearest")])
        searched += SEGMENT_SECONDS - 2 * EDGE_SECONDS
    peaks = np.sort(np.concatenate(peaks))[::-1]
    allowed = int(searched * false_alarm_rate_hz)
    return float(peaks[min(allowed, len(peaks) - 1)]), searched


def triggers(window_gps, p_merger, statistic, threshold, info) -> dict:
    """One row per cluster of overlapping windows above ``threshold`` whose H1 and L1 peaks are coincident."""
    from deepsky.fitting.matched_filter import TemplateBank, default_bank

    rate = info["sample_rate_hz"]
    above = np.flatnonzero(statistic > threshold)
    clusters, current = [], []
    for i in above:
        if current and window_gps[i] - window_gps[current[-1]] >= 1.0:
            clusters.append(current)
            current = []
        current.append(i)
    if current:
        clusters.append(current)
    names = ("gps_time", "score", "statistic", "snr_estimate", "m1", "m1_err", "m2", "m2_err", "snr_h1", "snr_l1",
             "dt_ms")
    rows = {name: [] for name in names}
    bank = TemplateBank(default_bank(DENSE_BANK_PER_AXIS)) if clusters else None
    strain = info["strain"]
    for cluster in clusters:
        best = cluster[int(np.argmax(statistic[cluster]))]
        start = int(round((window_gps[best] - info["gps_start"]) * rate))
        match = bank.best_match(strain[start : start + bank.window])
        dt = (match["own_merger_sample"][1] - match["own_merger_sample"][0]) / rate
        if abs(dt) > COINCIDENCE_SECONDS:
            continue
        values = (info["gps_start"] + (start + match["merger_sample"][0]) / rate, float(p_merger[best]),
                  float(statistic[best]), match["snr"], match["m1"], match["m1_err"], match["m2"], match["m2_err"],
                  match["detector_snr"][0], match["detector_snr"][1], 1e3 * dt)
        for name, value in zip(names, values):
            rows[name].append(value)
    columns = {name: np.asarray(values, np.float64) for name, values in rows.items()}
    columns["id"] = np.arange(len(columns["gps_time"]))
    columns["threshold"] = np.full(len(columns["id"]), threshold)
    columns["false_alarm_rate_per_hour"] = np.full(len(columns["id"]), 3600 * FALSE_ALARM_RATE_HZ)
    return {"id": columns.pop("id"), **columns}


def plot_sensitivity(inputs, path) -> bool:
    """Sensitivity per SNR bin for the network, the forest and the matched filter."""
    from deepsky.report.canvas import figure

    metrics = inputs.metrics
    if not metrics.get("by_snr"):
        return False
    curves = [("network", metrics)]
    if (metrics.get("baseline") or {}).get("by_snr"):
        curves.append((inputs.baseline_name, metrics["baseline"]))
    curves += [(values["name"], values) for values in (metrics.get("classical") or {}).values() if values.get("by_snr")]
    styles = ("-o", "--s", "-.v", ":^")
    with figure(path, (7.2, 4.8)) as fig:
        ax = fig.subplots()
        for k, (name, values) in enumerate(curves):
            rows = values["by_snr"]
            ax.plot([r["snr"] for r in rows], [r["sensitivity"] for r in rows], styles[k % len(styles)], ms=4,
                    label=f"{name} (SNR >= 10: {_fmt(values.get('sensitivity_snr_10'))})")
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.axvspan(10, SNR_BIN_EDGES[-1], color="tab:green", alpha=0.06, label="paper: 100% found at SNR >= 10")
        ax.set_xlabel("network optimal SNR (H1 and L1)")
        ax.set_ylabel(f"mergers found (false-alarm probability {FALSE_ALARM_PROBABILITY:.1%})")
        ax.set_ylim(0, 1.03)
        ax.legend(fontsize=8, loc="lower right")
    return True


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.3f}"
