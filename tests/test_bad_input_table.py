"""The bad-input table (docs/bad-input.md): each row a bad file, option or run directory given to a command.

Every row must end in one line ``deepsky: error: ...`` naming the file or
option, exit status 2, no traceback, and nothing written where the output
was asked for. The commands run in this process (``run_in_process``) to
save starting torch afresh for each of the rows.
"""

import io
import json
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
from astropy.io import fits

from conftest import REPO, run_in_process

# (row id, what is wrong, the command with {file} placeholders, a fragment the error line must hold)
ROWS = [
    # FITS images (star-galaxy predict with a catalogue)
    ("fits-random-bytes", "a .fits file of random bytes", "predict {run} {random.fits} --catalog {cat.csv}", "random.fits"),
    ("fits-truncated", "a FITS image cut in half", "predict {run} {cut.fits} --catalog {cat.csv}", "cut.fits"),
    ("fits-nan", "NaN pixels under an object", "predict {run} {nan.fits} --catalog {cat.csv}", "NaN"),
    ("fits-inf", "infinite pixels under an object", "predict {run} {inf.fits} --catalog {cat.csv}", "inf.fits"),
    ("fits-no-data", "image HDUs without data", "predict {run} {nodata.fits} --catalog {cat.csv}", "nodata.fits"),
    ("fits-1d", "1-D data in the image HDUs", "predict {run} {oned.fits} --catalog {cat.csv}", "oned.fits"),
    ("fits-4d", "one 4-D primary array", "predict {run} {fourd.fits} --catalog {cat.csv}", "fourd.fits"),
    ("fits-three-bands", "3 bands where the model takes 5", "predict {run} {three.fits} --catalog {cat.csv}", "three.fits"),
    ("fits-no-wcs", "ra/dec positions on an image without WCS", "predict {run} {field.fits} --catalog {radec.csv}", "WCS"),
    ("fits-zero-size", "an empty .fits file", "predict {run} {zero.fits} --catalog {cat.csv}", "zero.fits"),
    ("fits-missing", "a FITS file that does not exist", "predict {run} {tmp}/absent.fits --catalog {cat.csv}", "absent.fits"),
    ("fits-text", "a text file named .fits", "predict {run} {text.fits} --catalog {cat.csv}", "text.fits"),
    ("fits-wrong-bitpix", "BITPIX -64 over 32-bit data (the file too short for it)", "predict {run} {bitpix.fits} --catalog {cat.csv}", "bitpix.fits"),
    ("fits-sparse-10gb", "a 10 GB single-band image (sparse on disk)", "predict {run} {huge.fits} --catalog {cat.csv}", "huge.fits"),
    # pictures (a galaxy-morphology run)
    ("image-corrupt-jpeg", "a JPEG cut in half", "predict {morphology_run} {cut.jpg}", "cut.jpg"),
    ("image-text-png", "a text file named .png", "predict {morphology_run} {text.png}", "text.png"),
    ("image-1x1", "a 1x1 pixel PNG", "predict {morphology_run} {dot.png}", "dot.png"),
    ("image-empty-folder", "a folder with no images", "predict {morphology_run} {tmp}/nothing_here", "nothing_here"),
    # light curves and TFRecords (a transit-vetting run, trained on the shared TESS records)
    ("curve-nan-flux", "a light curve whose fluxes are all NaN", "predict {vetting_run} {nanflux.csv}", "nanflux.csv"),
    ("curve-negative-flux", "a light curve of negative fluxes", "predict {vetting_run} {negative.csv}", "negative.csv"),
    ("curve-too-short", "a light curve of 5 points", "predict {vetting_run} {short_curve.csv}", "short_curve.csv"),
    ("curve-no-columns", "a CSV without time and flux columns", "predict {vetting_run} {nocols.csv}", "nocols.csv"),
    ("tfrecord-bad-crc", "a TFRecord whose checksum is wrong", "train transit-vetting --data {badcrc.tfrecord} -o {out}", "badcrc.tfrecord"),
    ("tfrecord-truncated", "a TFRecord cut short", "train transit-vetting --data {cut.tfrecord} -o {out}", "cut.tfrecord"),
    ("tfrecord-not-example", "records that are not tf.train.Example", "train transit-vetting --data {junk.tfrecord} -o {out}", "junk.tfrecord"),
    # detector strain (a gw-detection run; GWOSC-like HDF5 files made here)
    ("strain-one-file", "H1 without L1", "predict {gw_run} {H-H1-a.hdf5}", "one GWOSC strain file per detector"),
    ("strain-same-detector", "two files from H1", "predict {gw_run} {H-H1-a.hdf5} {H-H1-b.hdf5}", "one each of H1, L1"),
    ("strain-other-times", "H1 and L1 over different GPS seconds", "predict {gw_run} {H-H1-a.hdf5} {L-L1-late.hdf5}", "L-L1-late.hdf5"),
    ("strain-gap", "NaN samples (a data gap) in H1", "predict {gw_run} {H-H1-gap.hdf5} {L-L1-a.hdf5}", "H-H1-gap.hdf5"),
    ("strain-short", "4 s of strain", "predict {gw_run} {H-H1-short.hdf5} {L-L1-short.hdf5}", "H-H1-short.hdf5"),
    ("strain-odd-rate", "strain at 5000 Hz", "predict {gw_run} {H-H1-5khz.hdf5} {L-L1-5khz.hdf5}", "5000 Hz"),
    ("strain-no-spacing", "strain/Strain without its Xspacing", "predict {gw_run} {H-H1-nospacing.hdf5} {L-L1-a.hdf5}", "Xspacing"),
    ("strain-2d", "a 2-D strain array", "predict {gw_run} {H-H1-2d.hdf5} {L-L1-a.hdf5}", "H-H1-2d.hdf5"),
    # catalogues
    ("cat-missing-columns", "no x/y or ra/dec columns", "predict {run} {field.fits} --catalog {nocols.csv}", "nocols.csv"),
    ("cat-text-in-numbers", "text in the x column", "predict {run} {field.fits} --catalog {textx.csv}", "textx.csv"),
    ("cat-sentinel", "-9999 sentinels as positions", "predict {run} {field.fits} --catalog {sentinel.csv}", "sentinel.csv"),
    ("cat-nan-position", "a NaN position", "predict {run} {field.fits} --catalog {nanpos.csv}", "nanpos.csv"),
    ("cat-off-image", "a position off the image", "predict {run} {field.fits} --catalog {off.csv}", "off.csv"),
    ("cat-empty", "a header and no rows", "predict {run} {field.fits} --catalog {empty.csv}", "empty.csv"),
    ("cat-zero-bytes", "an empty file", "predict {run} {field.fits} --catalog {zero.csv}", "zero.csv"),
    ("cat-duplicate-ids", "the same id twice", "predict {run} {field.fits} --catalog {dup.csv}", "dup.csv"),
    ("cat-unknown-format", "a catalogue of unknown extension", "predict {run} {field.fits} --catalog {cat.txt}", "cat.txt"),
    ("cat-corrupt-fits-table", "a FITS table of random bytes", "predict {run} {field.fits} --catalog {random.fits}", "random.fits"),
    ("cat-corrupt-parquet", "a Parquet file of random bytes", "predict {run} {field.fits} --catalog {bad.parquet}", "bad.parquet"),
    # HDF5 data sets
    ("h5-not-hdf5", "text named .h5 as training data", "train star-galaxy --data {text.h5} -o {out}", "text.h5"),
    ("h5-missing-keys", "no images dataset", "train star-galaxy --data {nokeys.h5} -o {out}", "nokeys.h5"),
    ("h5-short-labels", "fewer labels than images", "train star-galaxy --data {short.h5} -o {out}", "labels for"),
    ("h5-short-labels-evaluate", "fewer labels than images, to evaluate", "evaluate {run} --data {short.h5}", "labels for"),
    ("h5-text-labels", "labels stored as text", "train star-galaxy --data {textlabels.h5} -o {out}", "textlabels.h5"),
    ("h5-wrong-rank", "2-D images", "train star-galaxy --data {flat.h5} -o {out}", "flat.h5"),
    ("h5-predict-wrong-size", "a stack of 32x32 cutouts", "predict {run} {small.h5}", "small.h5"),
    # .npy stacks
    ("npy-object", "an object array (would need pickle)", "predict {run} {object.npy}", "object.npy"),
    ("npy-complex", "complex pixels", "predict {run} {complex.npy}", "complex.npy"),
    ("npy-strings", "an array of strings", "predict {run} {strings.npy}", "strings.npy"),
    ("npy-nan", "a NaN pixel in cutout 2", "predict {run} {nan.npy}", "nan.npy"),
    ("npy-three-bands", "3 bands where the model takes 5", "predict {run} {three.npy}", "3 bands"),
    ("npy-wrong-size", "32x32 cutouts where the model takes 48x48", "predict {run} {small.npy}", "small.npy"),
    ("npy-empty", "no cutouts", "predict {run} {none.npy}", "none.npy"),
    ("npy-garbage", "random bytes named .npy", "predict {run} {garbage.npy}", "garbage.npy"),
    ("npy-unknown-units", "--units janskys", "predict {run} {good.npy} --units janskys", "janskys"),
    # options
    ("opt-predict-batch-zero", "--batch-size 0", "predict {run} {good.npy} --batch-size 0", "--batch-size"),
    ("opt-predict-batch-negative", "--batch-size -3", "predict {run} {good.npy} --batch-size -3", "--batch-size"),
    ("opt-predict-views", "--views 3", "predict {run} {good.npy} --views 3", "--views"),
    ("opt-train-epochs-zero", "--epochs 0", "train star-galaxy --data {good.h5} --epochs 0 -o {out}", "--epochs"),
    ("opt-train-epochs-negative", "--epochs -2", "train star-galaxy --data {good.h5} --epochs -2 -o {out}", "--epochs"),
    ("opt-train-epochs-text", "--epochs abc", "train star-galaxy --data {good.h5} --epochs abc -o {out}", "--epochs"),
    ("opt-train-batch-zero", "--batch-size 0", "train star-galaxy --data {good.h5} --batch-size 0 -o {out}", "--batch-size"),
    ("opt-train-batch-negative", "--batch-size -4", "train star-galaxy --data {good.h5} --batch-size -4 -o {out}", "--batch-size"),
    ("opt-train-lr-nan", "--learning-rate nan", "train star-galaxy --data {good.h5} --learning-rate nan -o {out}", "--learning-rate"),
    ("opt-train-lr-negative", "--learning-rate -1", "train star-galaxy --data {good.h5} --learning-rate -1 -o {out}", "--learning-rate"),
    ("opt-train-lr-inf", "--learning-rate inf", "train star-galaxy --data {good.h5} --learning-rate inf -o {out}", "--learning-rate"),
    ("opt-train-rotations", "--rotations sideways", "train star-galaxy --data {good.h5} --rotations sideways -o {out}", "sideways"),
    ("opt-train-class-weight", "--class-weight heavy", "train star-galaxy --data {good.h5} --class-weight heavy -o {out}", "heavy"),
    ("opt-train-precision", "--precision fp8", "train star-galaxy --data {good.h5} --precision fp8 -o {out}", "fp8"),
    ("opt-train-ensemble", "--ensemble 0", "train star-galaxy --data {good.h5} --ensemble 0 -o {out}", "--ensemble"),
    ("opt-train-n", "--n 0", "train star-galaxy --n 0 -o {out}", "--n"),
    ("opt-train-seed", "--seed -1", "train star-galaxy --data {good.h5} --seed -1 -o {out}", "--seed"),
    ("opt-train-unknown-task", "a task that does not exist", "train quasar-hunting -o {out}", "quasar-hunting"),
    ("opt-train-unknown-model", "a model that does not exist", "train star-galaxy --data {good.h5} --model resnet-9000 -o {out}", "resnet-9000"),
    ("opt-train-unknown-survey", "a survey preset that does not exist", "train star-galaxy --survey hubble-deep -o {out}", "hubble-deep"),
    ("opt-train-unknown-option", "an option that does not exist", "train star-galaxy --colour red -o {out}", "--colour"),
    ("opt-train-no-task", "neither a task nor --resume", "train -o {out}", "task"),
    ("opt-simulate-n-zero", "--n 0", "simulate star-galaxy --n 0 -o {out}.h5", "--n"),
    ("opt-simulate-seed", "--seed -1", "simulate star-galaxy --n 5 --seed -1 -o {out}.h5", "--seed"),
    ("opt-simulate-suffix", "an output named .txt", "simulate star-galaxy --n 5 -o {out}.txt", ".h5"),
    ("opt-evaluate-n", "--n 0", "evaluate {run} --n 0", "--n"),
    ("opt-threads", "--threads 0", "--threads 0 predict {run} {good.npy}", "threads"),
    ("opt-device", "--device tpu", "--device tpu predict {run} {good.npy}", "tpu"),
    ("opt-finetune-freeze", "--freeze -1", "finetune {run} --freeze -1 -o {out}", "--freeze"),
    ("opt-experiment-unknown", "an experiment that does not exist", "experiment alchemy -o {out}", "alchemy"),
    # output paths
    ("out-is-fits-input", "-o naming the FITS image read", "predict {run} {field_copy.fits} --catalog {cat.csv} -o {field_copy.fits}", "input"),
    ("out-is-catalogue", "-o naming the catalogue read", "predict {run} {field.fits} --catalog {cat_copy.csv} -o {cat_copy.csv}", "input"),
    ("out-unknown-format", "a table named .xlsx", "predict {run} {good.npy} -o {out}.xlsx", ".xlsx"),
    ("out-train-is-file", "train -o naming an existing file", "train star-galaxy --data {good.h5} -o {good.h5}", "good.h5"),
    ("out-finetune-is-run", "finetune -o naming the run it starts from", "finetune {run} -o {run}", "input"),
    ("out-simulate-folder-missing-parent", "simulate -o inside a file", "simulate star-galaxy --n 5 -o {good.h5}/x.h5", "good.h5"),
    # run directories
    ("run-missing", "a run directory that does not exist", "evaluate {tmp}/nothing", "not a deepsky run directory"),
    ("run-config-empty", "config.json holding {}", "evaluate {cfg_empty}", "config.json"),
    ("run-config-list", "config.json holding a list", "predict {cfg_list} {good.npy}", "config.json"),
    ("run-config-corrupt", "config.json that is not JSON", "report {cfg_corrupt}", "config.json"),
    ("run-config-newer", "a run of a newer format version", "predict {cfg_newer} {good.npy}", "newer"),
    ("run-no-model", "a run whose training has not finished", "predict {no_model} {good.npy}", "model.keras"),
    ("run-corrupt-model", "model.keras of random bytes", "predict {bad_model} {good.npy}", "model.keras"),
    ("run-lambda-model", "model.keras holding a Lambda layer (code)", "predict {lambda_model} {good.npy}", "model.keras"),
    ("run-not-evaluated", "report before evaluate", "report {run}", "evaluate"),
    ("run-resume-nothing", "--resume where no run was started", "train --resume -o {tmp}/never", "never"),
    ("run-finetune-other-objective", "finetune a classifier onto deconvolution", "finetune {run} --task deconvolution -o {out}", "deconvolution"),
]

PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def _field(path, shape=(5, 120, 120)):
    image = np.random.default_rng(1).normal(0, 0.03, shape).astype(np.float32)
    fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(band) for band in image]).writeto(path)


def _with_pixel(path, value):
    _field(path)
    with fits.open(path, mode="update") as hdus:
        hdus[3].data[60, 60] = value


def _truncated(path):
    whole = path.with_name("whole.fits")
    _field(whole)
    data = whole.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _sparse_fits(path):
    side = 50_000  # 10 GB of float32 that the file system does not store
    header = fits.Header({"SIMPLE": True, "BITPIX": -32, "NAXIS": 2, "NAXIS1": side, "NAXIS2": side})
    data = header.tostring().encode("ascii")
    with open(path, "wb") as handle:
        handle.write(data)
        handle.truncate(len(data) + side * side * 4)


def _picture(fmt, size=(64, 64), cut=False):
    def write(path):
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(np.full((*size, 3), 128, np.uint8)).save(buffer, format=fmt)
        data = buffer.getvalue()
        path.write_bytes(data[: len(data) // 2] if cut else data)
    return write


def _records(damage):
    def write(path):
        from deepsky.data.tfrecords import write_records

        write_records(path, [b"\x0a\x00", b"\x0a\x00"])
        path.write_bytes(damage(bytearray(path.read_bytes())))
    return write


def _flip_last(data):
    data[-1] ^= 0xFF
    return bytes(data)


def _curve(flux):
    time = np.linspace(0, 27, len(flux))
    return _csv("time,flux\n" + "".join(f"{t},{f}\n" for t, f in zip(time, flux)))


def _wrong_bitpix(path):
    _field(path)
    data = bytearray(path.read_bytes())
    card = data.find(b"BITPIX  =", data.find(b"XTENSION"))  # the first band's header
    data[card : card + 30] = f"{'BITPIX':8}= {-64:>20}".encode("ascii")
    path.write_bytes(bytes(data))


def _strain(detector, start=1_000_000_000, seconds=16.0, rate=4096, damage=None):
    """A GWOSC-like strain file: white noise at 1e-21 of ``seconds`` at ``rate`` Hz from GPS ``start``."""
    def write(path):
        values = np.random.default_rng(len(path.name)).normal(0, 1e-21, int(seconds * rate))
        with h5py.File(path, "w") as f:
            item = f.create_dataset("strain/Strain", data=values[:, None] if damage == "2d" else values)
            if damage != "no-spacing":
                item.attrs["Xspacing"] = 1.0 / rate
            item.attrs["Xstart"] = start
            if damage == "gap":
                item[20000:21000] = np.nan
            f["meta/Detector"] = detector.encode()
            f["meta/GPSstart"] = start
    return write


def _csv(text):
    return lambda path: path.write_text(text)


def _stack(array):
    return lambda path: np.save(path, array, allow_pickle=array.dtype.kind == "O")


def _h5(images, labels=None, meta=True, key="images"):
    def write(path):
        with h5py.File(path, "w") as f:
            f[key] = images
            if labels is not None:
                f["labels"] = labels
            if meta:
                f.attrs["deepsky"] = json.dumps({"layout": "cutouts", "units": "nanomaggies", "bands": list("ugriz")})
    return write


CUTOUTS = np.random.default_rng(2).normal(0, 0.03, (4, 48, 48, 5)).astype(np.float32)
NAN_CUTOUTS = CUTOUTS.copy()
NAN_CUTOUTS[2, 10, 10, 1] = np.nan

BUILDERS = {
    "field.fits": _field,
    "random.fits": lambda p: p.write_bytes(np.random.default_rng(0).bytes(5000)),
    "cut.fits": _truncated,
    "nan.fits": lambda p: _with_pixel(p, np.nan),
    "inf.fits": lambda p: _with_pixel(p, np.inf),
    "nodata.fits": lambda p: fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU() for _ in range(5)]).writeto(p),
    "oned.fits": lambda p: fits.HDUList([fits.PrimaryHDU()] + [fits.ImageHDU(np.zeros(120, np.float32))
                                                               for _ in range(5)]).writeto(p),
    "fourd.fits": lambda p: fits.PrimaryHDU(np.zeros((2, 5, 120, 120), np.float32)).writeto(p),
    "three.fits": lambda p: _field(p, (3, 120, 120)),
    "zero.fits": lambda p: p.write_bytes(b""),
    "text.fits": lambda p: p.write_text("SIMPLE = T but not really a FITS file\n" * 50),
    "huge.fits": _sparse_fits,
    "bitpix.fits": _wrong_bitpix,
    "cut.jpg": _picture("JPEG", cut=True),
    "text.png": lambda p: p.write_text("not a picture\n" * 20),
    "dot.png": _picture("PNG", size=(1, 1)),
    "nanflux.csv": _curve([float("nan")] * 400),
    "H-H1-a.hdf5": _strain("H1"),
    "H-H1-b.hdf5": _strain("H1"),
    "L-L1-a.hdf5": _strain("L1"),
    "L-L1-late.hdf5": _strain("L1", start=1_000_000_100),
    "H-H1-gap.hdf5": _strain("H1", damage="gap"),
    "H-H1-short.hdf5": _strain("H1", seconds=4),
    "L-L1-short.hdf5": _strain("L1", seconds=4),
    "H-H1-5khz.hdf5": _strain("H1", rate=5000),
    "L-L1-5khz.hdf5": _strain("L1", rate=5000),
    "H-H1-nospacing.hdf5": _strain("H1", damage="no-spacing"),
    "H-H1-2d.hdf5": _strain("H1", damage="2d"),
    "negative.csv": _curve(-1 - np.random.default_rng(6).uniform(0, 0.01, 400)),
    "short_curve.csv": _curve([1.0, 1.0, 0.99, 1.0, 1.0]),
    "badcrc.tfrecord": _records(_flip_last),
    "cut.tfrecord": _records(lambda data: bytes(data[:-3])),
    "junk.tfrecord": lambda p: __import__("deepsky.data.tfrecords", fromlist=["write_records"]).write_records(
        p, [b"\xff\xfe\xfd" * 7]),
    "cat.csv": _csv("id,x,y\n0,60,60\n1,40,70\n"),
    "radec.csv": _csv("id,ra,dec\n0,150.1,2.2\n"),
    "nocols.csv": _csv("id,a,b\n0,60,60\n"),
    "textx.csv": _csv("id,x,y\n0,sixty,60\n"),
    "sentinel.csv": _csv("id,x,y\n0,60,60\n1,-9999,-9999\n"),
    "nanpos.csv": _csv("id,x,y\n0,60,60\n1,nan,60\n"),
    "off.csv": _csv("id,x,y\n0,60,60\n1,500,20\n"),
    "empty.csv": _csv("id,x,y\n"),
    "zero.csv": _csv(""),
    "dup.csv": _csv("id,x,y\n7,60,60\n7,40,70\n"),
    "cat.txt": _csv("id x y\n0 60 60\n"),
    "bad.parquet": lambda p: p.write_bytes(np.random.default_rng(3).bytes(2000)),
    "text.h5": lambda p: p.write_text("not an hdf5 file at all\n" * 100),
    "nokeys.h5": _h5(np.zeros((4, 48, 48, 5), np.float32), key="pictures"),
    "short.h5": _h5(np.repeat(CUTOUTS, 10, axis=0), np.zeros(30, np.int64)),
    "textlabels.h5": _h5(CUTOUTS, np.array([b"star", b"galaxy", b"star", b"star"])),
    "flat.h5": _h5(np.zeros((4, 48), np.float32), np.zeros(4, np.int64)),
    "small.h5": _h5(np.zeros((3, 32, 32, 5), np.float32)),
    "good.h5": _h5(np.repeat(CUTOUTS, 10, axis=0), np.arange(40) % 2),
    "object.npy": _stack(np.array([{"a": 1}, None], dtype=object)),
    "complex.npy": _stack(CUTOUTS.astype(np.complex64)),
    "strings.npy": _stack(np.array(["star", "galaxy"])),
    "nan.npy": _stack(NAN_CUTOUTS),
    "three.npy": _stack(CUTOUTS[..., :3]),
    "small.npy": _stack(np.zeros((3, 32, 32, 5), np.float32)),
    "none.npy": _stack(np.zeros((0, 48, 48, 5), np.float32)),
    "garbage.npy": lambda p: p.write_bytes(np.random.default_rng(4).bytes(3000)),
    "good.npy": _stack(CUTOUTS),
}
COPIES = {"field_copy.fits": "field.fits", "cat_copy.csv": "cat.csv"}


class Kit:
    """The bad files, made on first use in one folder, and the run directories derived from a trained run."""

    def __init__(self, folder: Path, trained_run: Path):
        self.folder, self.run = folder, trained_run

    def file(self, name: str) -> Path:
        path = self.folder / name
        if not path.exists():
            if name in COPIES:
                path.write_bytes(self.file(COPIES[name]).read_bytes())
            else:
                BUILDERS[name](path)
        return path

    def run_dir(self, name: str) -> Path:
        path = self.folder / name
        if path.exists():
            return path
        if name in TRAINED:
            trained = run_in_process("train", *TRAINED[name](), "--epochs", 1, "-o", path, check=False)
            if trained.returncode == 2 and "--data" in trained.stderr:
                pytest.skip(f"its run trains on real data that is not here ({trained.stderr.strip()})")
            assert trained.returncode == 0, trained.stderr
            return path
        path.mkdir()
        config = json.loads((self.run / "config.json").read_text())
        model = (self.run / "model.keras").read_bytes()
        if name == "cfg_empty":
            (path / "config.json").write_text("{}")
        elif name == "cfg_list":
            (path / "config.json").write_text("[1, 2]")
        elif name == "cfg_corrupt":
            (path / "config.json").write_text('{"task": "star-galaxy", ')
        elif name == "cfg_newer":
            (path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
            (path / "model.keras").write_bytes(model)
        elif name == "no_model":
            (path / "config.json").write_text(json.dumps(config))
        elif name == "bad_model":
            (path / "config.json").write_text(json.dumps(config))
            (path / "model.keras").write_bytes(np.random.default_rng(5).bytes(4000))
        elif name == "lambda_model":
            (path / "config.json").write_text(json.dumps(config))
            _lambda_model(path / "model.keras")
        return path

    def expand(self, command: str, out: Path) -> list[str]:
        def value(match):
            key = match.group(1)
            if key == "run":
                return str(self.run)
            if key == "out":
                return str(out)
            if key == "tmp":
                return str(self.folder)
            if "." in key:
                return str(self.file(key))
            return str(self.run_dir(key))
        return PLACEHOLDER.sub(value, command).split()


# runs trained on first use, for the rows that need a task of another input kind
TRAINED = {
    "morphology_run": lambda: ["galaxy-morphology", "--n", 32, "--batch-size", 16],
    "vetting_run": lambda: ["transit-vetting", "--n", 64],  # the shared TESS records
    "gw_run": lambda: ["gw-detection", "--n", 64, "--batch-size", 32],
}


def _lambda_model(path):
    import keras

    inputs = keras.Input((48, 48, 5))
    outputs = keras.layers.Lambda(lambda x: x * 2)(keras.layers.Flatten()(inputs))
    keras.Model(inputs, keras.layers.Dense(2)(outputs)).save(path)


@pytest.fixture(scope="module")
def kit(tmp_path_factory, trained_run):
    return Kit(tmp_path_factory.mktemp("bad"), trained_run)


@pytest.mark.parametrize("row", ROWS, ids=[row[0] for row in ROWS])
def test_bad_input(row, kit, tmp_path):
    name, _, command, fragment = row
    out = tmp_path / "out"
    args = kit.expand(command, out)
    if args[0] == "predict" and "-o" not in args:
        args += ["-o", str(out.with_suffix(".csv"))]
    before = {path: path.stat().st_mtime_ns for path in kit.folder.rglob("*") if path.is_file()}
    result = run_in_process(*args, check=False)
    assert result.returncode == 2, f"{name}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("deepsky: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    assert fragment in errors[0], errors[0]
    assert not any(line.startswith(("WARNING", "Warning")) or "Warning:" in line for line in lines), result.stderr
    assert not [path for path in tmp_path.iterdir()], "output left behind"
    after = {path: path.stat().st_mtime_ns for path in kit.folder.rglob("*") if path.is_file() and path in before}
    assert after == {path: t for path, t in before.items() if path in after}, "an input was modified"
    assert not [path for path in kit.folder.rglob("*") if ".part" in path.name], "a temporary file was left"


def test_every_row_is_in_the_docs():
    text = (REPO / "docs" / "bad-input.md").read_text()
    missing = [row[0] for row in ROWS if f"`{row[0]}`" not in text]
    assert not missing, f"rows missing from docs/bad-input.md: {missing}"
    assert len(ROWS) >= 60


def test_the_installed_command_answers_in_one_line_without_library_warnings(trained_run, tmp_path):
    """A FITS header with non-ASCII bytes makes astropy warn; the user sees deepsky's one line only."""
    from conftest import run_cli

    path = tmp_path / "accents.fits"
    hdus = [fits.PrimaryHDU()] + [fits.ImageHDU(np.zeros((120, 120), np.float32)) for _ in range(3)]
    hdus[1].header["OBSERVER"] = "Cafe"
    fits.HDUList(hdus).writeto(path)
    data = bytearray(path.read_bytes())
    data[data.find(b"'Cafe") + 4] = 0xE9  # Latin-1, as old pipelines wrote it
    path.write_bytes(bytes(data))
    catalog = tmp_path / "cat.csv"
    catalog.write_text("id,x,y\n0,60,60\n")
    out = tmp_path / "out.csv"
    result = run_cli("predict", trained_run, path, "--catalog", catalog, "-o", out, check=False)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("deepsky: error: "), result.stderr
    assert "accents.fits" in lines[0]
    assert not out.exists()
