"""Data sets in HDF5 shards: simulated in parallel to the same bytes, trained on lazily."""

import json

import h5py
import numpy as np
import pytest

from conftest import run_cli
from deepsky.data.shards import ShardedArray, open_shards, shard_seed, shard_sizes
from deepsky.data.store import Dataset, take


def test_shard_seeds_and_sizes():
    assert shard_sizes(700, 300) == [300, 300, 100]
    seeds = {shard_seed(0, k) for k in range(100)}
    assert len(seeds) == 100 and shard_seed(0, 3) == shard_seed(0, 3) and shard_seed(1, 3) != shard_seed(0, 3)


def test_shards_on_two_dask_workers_are_the_bytes_of_the_serial_loop_and_train_lazily(tmp_path):
    serial, parallel = tmp_path / "serial", tmp_path / "parallel"
    run_cli("simulate", "star-galaxy", "--n", 500, "--shard-size", 200, "-o", serial)
    result = run_cli("simulate", "star-galaxy", "--n", 500, "--shard-size", 200, "-o", parallel, "--workers", 2)
    assert "3 shards" in result.stdout
    names = sorted(p.name for p in serial.iterdir())
    assert names == sorted(p.name for p in parallel.iterdir()) == ["shard-00000.h5", "shard-00001.h5",
                                                                     "shard-00002.h5", "shards.json"]
    for name in names:
        assert (serial / name).read_bytes() == (parallel / name).read_bytes(), name
    # a lost shard is made again, the same bytes
    lost = (serial / "shard-00001.h5").read_bytes()
    (serial / "shard-00001.h5").unlink()
    run_cli("simulate", "star-galaxy", "--n", 500, "--shard-size", 200, "-o", serial)
    assert (serial / "shard-00001.h5").read_bytes() == lost
    other = run_cli("simulate", "star-galaxy", "--n", 600, "--shard-size", 200, "-o", serial, check=False)
    assert other.returncode == 2 and "holds other shards" in other.stderr
    run = tmp_path / "run"
    run_cli("train", "star-galaxy", "--data", parallel, "--epochs", 1, "-o", run)
    config = json.loads((run / "config.json").read_text())
    assert config["n_train"] + config["n_validation"] == 500


def test_sharded_array_reads_only_the_rows_asked_for(tmp_path):
    rng = np.random.default_rng(0)
    parts = [rng.normal(size=(n, 4, 4, 2)).astype(np.float32) for n in (5, 7, 3)]
    for k, images in enumerate(parts):
        Dataset(images, np.arange(len(images)) % 2, {"k": np.full(len(images), k)}).save(tmp_path / f"shard-{k:05d}.h5")
    (tmp_path / "shards.json").write_text(json.dumps({"shards": [{"file": f"shard-{k:05d}.h5"} for k in range(3)]}))
    data = open_shards(tmp_path)
    whole = np.concatenate(parts)
    assert isinstance(data.inputs, ShardedArray) and data.inputs.shape == whole.shape and len(data) == 15
    assert list(data.objects["k"]) == [0] * 5 + [1] * 7 + [2] * 3
    rows = np.array([14, 0, 6, 6, 5, 11])
    np.testing.assert_array_equal(data.inputs[rows], whole[rows])
    np.testing.assert_array_equal(data.inputs[3:9], whole[3:9])
    view = take(data.inputs, np.array([2, 9, 13, 4]))
    assert isinstance(view, ShardedArray) and len(view) == 4  # a split holds no pixels
    np.testing.assert_array_equal(view[np.array([3, 0])], whole[[4, 2]])
    np.testing.assert_array_equal(np.asarray(take(view, np.array([1, 2]))), whole[[9, 13]])
    subset = data.subset(np.array([1, 12]))
    np.testing.assert_array_equal(np.asarray(subset.inputs), whole[[1, 12]])
    with pytest.raises(IndexError):
        data.inputs[np.array([15])]
