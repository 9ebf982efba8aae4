"""gw-detection and gw-masses: the curriculum, the paper's metrics, and searching real GWOSC strain.

Tests that read the shared LIGO segments skip, saying so, where ../shared is
absent; CI has it.
"""

import csv

import numpy as np
import pytest

from conftest import run_in_process as run_cli
from deepsky import tasks
from deepsky.paths import shared_data_dir
from deepsky.tasks.gw_detection import (CURRICULUM_START_SNR, TRAIN_SNR, curriculum_floor, ranking_statistic,
                                        sensitivity_by_snr, triggers)

STRAIN = shared_data_dir("ligo_strain")
needs_strain = pytest.mark.skipif(STRAIN is None, reason="../shared/data/ligo_strain is not here (a user's clone)")
EVENTS = {"1128678884": 1128678900.44, "1167559920": 1167559936.6}  # LVT151012, GW170104 (GPS)


def _pair(gps_start):
    return sorted(STRAIN.glob(f"*-{gps_start}-32.hdf5"))


def test_the_curriculum_starts_loud_and_ends_with_every_snr():
    floors = [curriculum_floor(e, 10) for e in range(10)]
    assert floors[0] == CURRICULUM_START_SNR and floors[-1] == TRAIN_SNR[0]
    assert all(a >= b for a, b in zip(floors, floors[1:])) and floors[5] == TRAIN_SNR[0]
    assert curriculum_floor(0, 1) == TRAIN_SNR[0]  # one epoch: no curriculum

    task = tasks.get("gw-detection")
    data = task.simulate(256, seed=3)
    first = task.epoch_rows(data, 0, 10)
    labels, snr = data.labels[first], data.objects["snr"][first]
    assert (snr[labels == 1] >= CURRICULUM_START_SNR).all()
    assert (labels == 0).sum() == (labels == 1).sum() > 0  # as many noise windows as mergers
    assert len(task.epoch_rows(data, 9, 10)) == len(data)


def test_sensitivity_counts_mergers_above_the_noise_quantile():
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(1000, int), np.ones(1000, int)]
    snr = np.r_[np.full(1000, np.nan), rng.uniform(2, 16, 1000)]
    statistic = np.r_[rng.normal(0, 1, 1000), snr[1000:] - 6 + rng.normal(0, 1, 1000)]
    out = sensitivity_by_snr(labels, statistic, snr, false_alarm_probability=0.005)
    assert out["false_alarm_rate_measured"] <= 0.005
    rates = [row["sensitivity"] for row in out["by_snr"]]
    assert rates[0] < 0.05 and rates[-1] == 1.0 and out["sensitivity_snr_10"] > 0.95
    # the statistic keeps its order where float32 probabilities of the positive class round to 1
    p = np.array([[1e-12, 1.0], [1e-9, 1.0]], np.float32)
    assert ranking_statistic(p)[0] > ranking_statistic(p)[1]


def test_gw_masses_decodes_log_mass_gaussians_into_masses_with_intervals():
    task = tasks.get("gw-masses")
    data = task.prepare(task.simulate(64, seed=1), "simulated")
    assert np.isfinite(data.labels).all() and np.abs(data.labels).max() < 3
    # the exact targets and a sigma of 10% in ln m: the masses back, intervals of about +-10%
    outputs = np.concatenate([data.labels, np.full_like(data.labels, np.log(0.1 / 0.6))], 1)
    decoded = task.decode(outputs, data.inputs)
    np.testing.assert_allclose(decoded["m1"], data.objects["m1"], rtol=1e-4)
    np.testing.assert_allclose(decoded["m2_hi"] / decoded["m2"], np.exp(0.1), rtol=1e-4)
    metrics = task.metrics(data, decoded)
    assert metrics["mean_relative_error"] < 1e-3 and metrics["parameters"]["m1"]["coverage_68"] == 1.0


@needs_strain
@pytest.mark.parametrize("gps_start", sorted(EVENTS))
def test_whitened_real_strain_has_unit_variance_and_the_matched_filter_times_the_event(gps_start):
    from deepsky.data.strain import read_pair, sliding_windows, whitened

    strains = read_pair(_pair(gps_start))
    assert [s.detector for s in strains] == ["H1", "L1"]
    series = whitened(strains)
    assert np.allclose(series[8192:-8192].std(axis=0), 1.0, atol=0.05)
    windows, offsets = sliding_windows(series, 4096, 1.0, 0.125)
    gps = strains[0].gps_start + offsets
    # scores standing in for a network's: high for the windows whose last 80% holds the catalogue time
    event = EVENTS[gps_start]
    statistic = np.where((event - gps > 0.2) & (event - gps < 0.9), 10.0, -10.0)
    info = {"strain": series, "gps_start": strains[0].gps_start, "sample_rate_hz": 4096.0}
    found = triggers(np.round(gps, 4), 1 / (1 + np.exp(-statistic)), statistic, 0.0, info)
    assert len(found["gps_time"]) == 1
    assert abs(found["gps_time"][0] - event) < 0.125  # within the stride
    assert abs(found["dt_ms"][0]) <= 12 and found["snr_estimate"][0] > 8
    assert found["m1"][0] >= found["m2"][0] > 5 and found["m1_err"][0] > 0


@needs_strain
def test_predict_searches_a_pair_of_gwosc_files_and_writes_triggers(tmp_path):
    run = tmp_path / "run"
    run_cli("train", "gw-detection", "--n", 96, "--epochs", 1, "--batch-size", 32, "-o", run)
    table = tmp_path / "triggers.csv"
    done = run_cli("predict", run, *_pair("1167559920"), "-o", table)
    assert "Traceback" not in done.stderr
    with table.open() as f:
        header = next(csv.reader(f))
    assert header[:6] == ["id", "gps_time", "score", "statistic", "snr_estimate", "m1"]


def test_the_classifier_starts_from_a_trained_mass_predictor(tmp_path):
    """George & Huerta initialised the detector from the predictor: deepsky finetune across the two objectives."""
    import json

    masses, detector = tmp_path / "masses", tmp_path / "detector"
    run_cli("train", "gw-masses", "--n", 64, "--epochs", 1, "--batch-size", 32, "-o", masses)
    done = run_cli("finetune", masses, "--task", "gw-detection", "--n", 64, "--epochs", 1, "-o", detector)
    assert "Traceback" not in done.stderr
    transfer = json.loads((detector / "config.json").read_text())["transfer"]
    assert {"conv1", "conv2", "conv3", "fc1"} <= set(transfer["copied_layers"])
    assert "outputs" not in transfer["copied_layers"]  # the regression head is not the classifier's


@needs_strain
@pytest.mark.slow  # trains for about 3 minutes: ./test.sh -m slow
def test_a_trained_network_finds_gw170104_and_nothing_else_in_both_segments(tmp_path):
    """The loud event at its catalogue time within the stride, coincident, and no noise trigger in 56 s searched.

    The default run (40,000 windows, 30 epochs) also finds the marginal
    LVT151012; this shorter training is only asked for GW170104.
    """
    run = tmp_path / "run"
    run_cli("train", "gw-detection", "--n", 12000, "--epochs", 8, "-o", run)
    for gps_start, event in EVENTS.items():
        table = tmp_path / f"{gps_start}.csv"
        run_cli("predict", run, *_pair(gps_start), "-o", table)
        rows = list(csv.DictReader(table.open()))
        assert all(abs(float(row["gps_time"]) - event) < 0.125 for row in rows), rows  # no other trigger
        if gps_start == "1167559920":
            assert len(rows) == 1 and float(rows[0]["snr_estimate"]) > 8


def test_a_merger_in_one_detector_only_is_not_a_coincident_trigger():
    """A glitch-like chirp in H1 with noise alone in L1: L1's own loudest peak is elsewhere, so no trigger."""
    from deepsky.simulate import gravitational_waves as gw

    detectors = gw.Detectors(noise_seconds=32)
    rng = np.random.default_rng(11)
    hp, hc, peak = gw.polarisations(36.0, 29.0)
    signal = gw._placed(hp, peak, detectors.n // 2, detectors.n)
    scale = 20.0 / detectors.optimal_snr(signal)
    series = np.stack([detectors.whiten(detectors.coloured_noise(rng) + scale * signal),
                       detectors.whiten(detectors.coloured_noise(rng))], -1).astype(np.float32)
    start = detectors.n // 2 - int(0.7 * 4096)
    gps = np.array([start / 4096.0])
    info = {"strain": series, "gps_start": 0.0, "sample_rate_hz": 4096.0}
    assert len(triggers(gps, np.array([1.0]), np.array([10.0]), 0.0, info)["gps_time"]) == 0
    both = np.stack([series[:, 0], detectors.whiten(detectors.coloured_noise(rng) + scale * signal)], -1)
    found = triggers(gps, np.array([1.0]), np.array([10.0]), 0.0, {**info, "strain": both.astype(np.float32)})
    assert len(found["gps_time"]) == 1 and abs(found["gps_time"][0] - detectors.n / 2 / 4096) < 0.01


def test_the_mass_predictor_ends_in_a_linear_head():
    """Means and log sigmas must be free to take any value: a softmax there cannot learn a mass."""
    task = tasks.get("gw-masses")
    data = task.prepare(task.simulate(16, seed=2), "simulated")
    model = task.build_model("george-huerta-shallow", data)
    last = model.layers[-1]
    assert last.name == "outputs" and last.units == 4 and last.activation.__name__ == "linear"
