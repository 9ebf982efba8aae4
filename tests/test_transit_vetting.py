"""Transit vetting: the TFRecord reader (no TensorFlow), the views, the split by star and the task end to end."""

import csv
import json

import numpy as np
import pytest

from conftest import run_in_process as run_cli, shared
from deepsky.data.store import split
from deepsky.data.tfrecords import encode_example, iter_records, parse_example, read_examples, write_records
from deepsky.data.views import read_views
from deepsky.errors import DeepskyError
from deepsky.metrics import ranking_metrics

TESS = "tess_astronet_triage"


def _example(rng, disposition="PC", tic_id=1, global_bins=201, local_bins=61):
    return encode_example({"global_view": rng.normal(size=global_bins).astype(np.float32),
                           "local_view": rng.normal(size=local_bins).astype(np.float32),
                           "Disposition": [disposition], "tic_id": np.array([tic_id]),
                           "Period": np.array([3.5], np.float32), "SN": np.array([12.0], np.float32)})


def test_records_round_trip_with_every_kind_of_feature(tmp_path):
    features = {"floats": np.array([1.5, -2.25], np.float32), "ints": np.array([7, -3, 2**40]),
                "names": [b"PC", b"EB"]}
    path = write_records(tmp_path / "a.tfrecord", [encode_example(features)] * 3)
    examples = read_examples(path)
    assert len(examples) == 3
    np.testing.assert_array_equal(examples[2]["floats"], features["floats"])
    np.testing.assert_array_equal(examples[2]["ints"], features["ints"])
    assert examples[2]["names"] == [b"PC", b"EB"]


def test_a_flipped_bit_and_a_truncated_file_are_errors_naming_file_and_record(tmp_path):
    rng = np.random.default_rng(0)
    path = write_records(tmp_path / "good", [_example(rng) for _ in range(3)])
    data = bytearray(path.read_bytes())
    record = len(data) // 3
    bad = tmp_path / "flipped"
    flipped = bytearray(data)
    flipped[record + 40] ^= 0x01  # inside the second record's payload
    bad.write_bytes(bytes(flipped))
    with pytest.raises(DeepskyError, match=r"flipped: record 1 .*corrupt"):
        list(iter_records(bad))
    cut = tmp_path / "cut"
    cut.write_bytes(bytes(data[:-10]))
    with pytest.raises(DeepskyError, match=r"cut: truncated in record 2"):
        list(iter_records(cut))
    header = tmp_path / "header"
    header.write_bytes(bytes(data[: record + 5]))
    with pytest.raises(DeepskyError, match=r"header: truncated in the header of record 1"):
        list(iter_records(header))
    not_records = tmp_path / "notes.txt"
    not_records.write_text("period 3.5 days, depth 2000 ppm, and more text than a header")
    with pytest.raises(DeepskyError, match=r"notes.txt: record 0 .*corrupt length"):
        list(iter_records(not_records))


def test_views_need_both_and_the_same_lengths(tmp_path):
    rng = np.random.default_rng(1)
    one = write_records(tmp_path / "short", [_example(rng), _example(rng, local_bins=31)])
    with pytest.raises(DeepskyError, match=r"short: record 1 has views of 201 and 31 bins"):
        read_views([one])
    lacking = write_records(tmp_path / "lacking", [encode_example({"global_view": np.zeros(5, np.float32)})])
    with pytest.raises(DeepskyError, match=r"lacking: record 0 has no local_view"):
        read_views([lacking])
    data = read_views([write_records(tmp_path / "ok", [_example(rng, "EB", 9), _example(rng, "J", 10)])])
    assert data.inputs["global_view"].shape == (2, 201, 1) and data.inputs["local_view"].shape == (2, 61, 1)
    assert list(data.objects["disposition"]) == ["EB", "J"] and list(data.objects["tic_id"]) == [9, 10]
    assert data.objects["period_days"][0] == pytest.approx(3.5)


def test_the_split_by_star_keeps_every_star_on_one_side():
    stars = np.random.default_rng(2).integers(0, 300, 2000)
    train, validation = split(len(stars), 0.1, seed=4, groups=stars)
    assert not set(stars[train]) & set(stars[validation])
    assert len(train) + len(validation) == 2000 and 0.09 < len(validation) / 2000 < 0.13
    again = split(len(stars), 0.1, seed=4, groups=stars)
    np.testing.assert_array_equal(again[1], validation)
    # without groups it is the seeded random split training always used
    plain = split(100, 0.1, seed=4)
    assert len(plain[1]) == 10 and not set(plain[0]) & set(plain[1])


def test_recall_at_precision_takes_the_best_threshold_that_keeps_the_precision():
    labels = np.array([0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.85, 0.6, 0.8, 0.9, 0.95])
    m = ranking_metrics(labels, scores, precision=0.99)
    assert m["recall_at_precision"] == pytest.approx(0.5)  # above 0.85 only planets: 2 of 4
    assert ranking_metrics(labels, scores, precision=0.75)["recall_at_precision"] == pytest.approx(1.0)
    assert ranking_metrics(np.zeros(3, int), np.ones(3))["average_precision"] is None


def test_the_shared_tess_records_read_without_tensorflow():
    folder = shared(TESS)
    payload = next(iter_records(folder / "val-00000-of-00001"))
    assert set(parse_example(payload)) >= {"global_view", "local_view", "Disposition", "tic_id"}
    val = read_views([folder / "val-00000-of-00001"])
    assert len(val) == 1657 and val.inputs["global_view"].shape[1:] == (201, 1)
    counts = {d: int((val.objects["disposition"] == d).sum()) for d in ("PC", "EB", "J")}
    assert counts == {"PC": 51, "EB": 176, "J": 1430}
    # views are normalised as in Astronet-Triage: median 0, transit minimum -1
    assert np.allclose(np.median(val.inputs["global_view"][:50, :, 0], axis=1), 0, atol=1e-3)
    assert np.allclose(val.inputs["local_view"][:50, :, 0].min(axis=1), -1, atol=1e-3)


@pytest.fixture(scope="module")
def small_tess(tmp_path_factory):
    """A folder of 600 training and 200 held-out real TESS signals, re-written as TFRecords."""
    folder = shared(TESS)
    out = tmp_path_factory.mktemp("tess") / "records"
    out.mkdir()
    train = [p for f in sorted(folder.glob("train-*"))[:2] for p in iter_records(f)][:600]
    write_records(out / "train-00000-of-00001", train)
    write_records(out / "val-00000-of-00001", list(iter_records(folder / "val-00000-of-00001"))[:200])
    return out


def test_vetting_trains_scores_held_out_stars_and_predicts_records(small_tess, tmp_path):
    run = tmp_path / "run"
    trained = run_cli("train", "transit-vetting", "--data", small_tess, "--epochs", 1, "-o", run)
    config = json.loads((run / "config.json").read_text())
    assert config["contract"]["input_shape"] == {"global_view": [201, 1], "local_view": [61, 1]}
    assert config["data"]["files"] == ["train-00000-of-00001"]
    assert config["n_train"] + config["n_validation"] + config["data"]["left_out_held_out_stars"] == 600
    assert "left out" in trained.stdout + trained.stderr or config["data"]["left_out_held_out_stars"] == 0
    run_cli("evaluate", run)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["held_out"] and metrics["n"] == 200 and metrics["test_data"]["files"] == ["val-00000-of-00001"]
    assert 0 <= metrics["average_precision"] <= 1 and "recall_at_precision" in metrics
    assert set(metrics["recall_by_disposition"]) <= {"PC", "EB", "J", "O"}
    run_cli("report", run)
    assert "Average precision" in (run / "report.html").read_text()
    assert (run / "figures" / "precision_recall.png").exists()
    table = tmp_path / "verdicts.csv"
    run_cli("predict", run, small_tess / "val-00000-of-00001", "-o", table)
    rows = list(csv.DictReader(line for line in table.open() if not line.startswith("#")))
    assert len(rows) == 200 and rows[0]["id"] == "val-00000-of-00001:0"
    assert list(rows[0])[:3] == ["id", "tic_id", "period_days"] and "p_planet" in rows[0]
    assert 0 <= float(rows[0]["p_planet"]) <= 1


@pytest.fixture(scope="module")
def tiny_run(small_tess, tmp_path_factory):
    run = tmp_path_factory.mktemp("vetting") / "run"
    run_cli("train", "transit-vetting", "--data", small_tess, "--n", 64, "--epochs", 1, "-o", run)
    return run


def test_light_curves_in_one_row_per_signal_out(tiny_run, tmp_path):
    """K2-3's light curve: detrended, searched, folded and scored; single-transit signals flagged, not scored."""
    table = tmp_path / "k2.csv"
    run_cli("predict", tiny_run, shared("kepler_k2_lightcurves/k2") / "EPIC201367065.csv", "-o", table)
    rows = list(csv.DictReader(line for line in table.open() if not line.startswith("#")))
    assert [row["id"] for row in rows[:2]] == ["EPIC201367065:0", "EPIC201367065:1"]
    assert abs(float(rows[0]["period_days"]) - 10.054) < 0.02 and int(rows[0]["transits"]) >= 7
    for row in rows:
        assert (row["flag"] == "") == (row["class"] != "") == (row["p_planet"] != "nan")
        assert row["flag"] == "" or "fewer than 2 transits" in row["flag"]
    mixed = run_cli("predict", tiny_run, shared("kepler_k2_lightcurves/k2") / "EPIC201367065.csv",
                    shared(TESS) / "val-00000-of-00001", "-o", tmp_path / "mixed.csv", check=False)
    assert mixed.returncode == 2 and "not both" in mixed.stderr and not (tmp_path / "mixed.csv").exists()


def test_a_corrupt_record_file_is_one_line_and_no_table(small_tess, tiny_run, tmp_path):
    run = tiny_run
    broken = tmp_path / "broken"
    data = (small_tess / "val-00000-of-00001").read_bytes()
    broken.write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.csv"
    result = run_cli("predict", run, broken, "-o", out, check=False)
    assert result.returncode == 2 and "broken: truncated in" in result.stderr
    assert "Traceback" not in result.stderr and not out.exists()
