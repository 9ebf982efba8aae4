"""The ``deepsky`` command: parse, call the library, print. Nothing heavy at import."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from deepsky.errors import DeepskyError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deep learning for astronomy: simulate, train, evaluate, report and predict.",
)


@app.callback()
def options(
    threads: Optional[int] = typer.Option(
        None, "--threads", help="CPU threads (default: the cores this process may use, or $DEEPSKY_THREADS)."),
    device: Optional[str] = typer.Option(
        None, "--device", help="auto (a GPU where torch sees one, else the CPU), cpu or cuda (default: auto, "
                               "or $DEEPSKY_DEVICE)."),
):
    """Deep learning for astronomy: simulate, train, evaluate, report and predict."""
    import os

    from deepsky.config import THREADS_ENV, choose_device, requested_threads

    if threads is not None:
        count = requested_threads(threads)  # a bad count fails here, before any work
        os.environ[THREADS_ENV] = os.environ["OMP_NUM_THREADS"] = str(count)
    if device is not None:
        choose_device(device)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _progress():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
        console=_console(), transient=False,
    )


class _Bar:
    """A rich progress task that callbacks can advance."""

    def __init__(self, progress, description, total):
        self.progress = progress
        self.id = progress.add_task(description, total=total, info="")

    def advance(self, k=1, info=None):
        self.progress.update(self.id, advance=k, **({"info": info} if info is not None else {}))


@app.command("tasks")
def tasks_command():
    """List the tasks, one a line, with a short description."""
    from deepsky import tasks

    for name, text in tasks.describe().items():
        print(f"{name}\t{text}")


@app.command("models")
def models_command():
    """List the registered models, one a line, with a short description."""
    from deepsky import models

    for name, text in models.describe().items():
        print(f"{name}\t{text}")


@app.command()
def simulate(
    task: str = typer.Argument(..., help="Task name (see deepsky tasks)."),
    n: int = typer.Option(None, "--n", help="Number of cutouts (default: the task's training size)."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives the same bytes."),
    output: Path = typer.Option(..., "-o", "--output", help="HDF5 file to write; a folder (no suffix) for HDF5 shards."),
    survey: Optional[str] = typer.Option(None, help="Survey preset (sdss, cfhtls...; default: the task's)."),
    shard_size: int = typer.Option(50_000, help="Objects per shard when -o is a folder."),
    workers: Optional[int] = typer.Option(None, help="Shards: Dask worker processes to simulate them on (default 1: one shard after another in this process; the files are the same bytes either way)."),
    scheduler: Optional[str] = typer.Option(None, help="Shards: address of a running Dask scheduler to simulate them on."),
):
    """Simulate a task's data set into an HDF5 file, or into a folder of HDF5 shards (train reads them lazily)."""
    from deepsky import checks, tasks

    checks.at_least("--n", n)
    checks.at_least("--seed", seed, 0)
    checks.at_least("--shard-size", shard_size)
    if workers is not None:
        checks.at_least("--workers", workers)
    spec = tasks.get(task, **({"survey": survey} if survey else {}))
    n = n or spec.default_train_size
    if output.suffix == "":
        from deepsky.data.shards import simulate_shards

        with _progress() as progress:
            bar = _Bar(progress, f"simulating {spec.name} in shards of {shard_size:,}", n)
            index = simulate_shards(spec, n, seed, output, shard_size=shard_size, workers=workers,
                                    scheduler=scheduler, on_shard=bar.advance)
        print(f"wrote {n} objects in {len(index['shards'])} shards to {output} (train with --data {output})")
        return
    if workers is not None or scheduler:
        raise DeepskyError("--workers and --scheduler simulate shards: give -o a folder (no suffix)")
    checks.suffix_in("-o", output, (".h5", ".hdf5"))
    checks.writable_file(output)
    with _progress() as progress:
        bar = _Bar(progress, f"simulating {spec.name}", n)
        data = spec.simulate(n, seed, progress=bar.advance)
    data.save(output)
    print(f"wrote {len(data)} objects ({data.layout}) to {output}")


@app.command()
def train(
    task: str = typer.Argument(None, help="Task name (see deepsky tasks); not needed with --resume."),
    output: Path = typer.Option(..., "-o", "--output", help="Run directory to create (or resume)."),
    data: Optional[Path] = typer.Option(None, help="HDF5 data set (default: simulate the task's set)."),
    model: Optional[str] = typer.Option(None, help="Model name (default: the task's paper model); several, comma-separated (deeplens,kim-brunner), train an ensemble of different networks whose scores are averaged."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (default: the task's)."),
    n: Optional[int] = typer.Option(None, "--n", help="Cutouts to simulate when no --data is given."),
    seed: int = typer.Option(0, help="Seed for simulation, split, initial weights and batches."),
    batch_size: Optional[int] = typer.Option(None, help="Examples per step (default: the task's)."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate (AdamW, cosine decay; default: the task's)."),
    precision: str = typer.Option("auto", help="auto, bf16 or fp32."),
    augment: Optional[bool] = typer.Option(None, help="Random rotations and flips (default: on for cutout tasks)."),
    rotations: Optional[str] = typer.Option(
        None, help="dihedral (the 8 rotations and flips of the square) or any (any angle, mirror images, "
                   "zoom and shift, as Dieleman et al.; default: the task's)."),
    survey: Optional[str] = typer.Option(None, help="Survey preset of simulated cutouts (sdss, cfhtls...; default: the task's)."),
    class_weight: Optional[str] = typer.Option(None, help="none; balanced (rare classes weigh in as much as common ones); sqrt (halfway) (default: the task's)."),
    ensemble: int = typer.Option(1, help="Networks to train (seeds seed, seed+1, ...); the saved model averages "
                                         "their outputs (Yu et al. average 10)."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run from its last epoch, with its stored settings (--epochs may extend it)."
    ),
    processes: int = typer.Option(1, help="Train data-parallel in this many processes on this machine (torch DistributedDataParallel; each batch split between them). On a cluster launch deepsky train under torchrun or srun instead."),
):
    """Train a task's model; checkpoints every epoch into the run directory."""
    from deepsky import checks, tasks
    from deepsky.train import TrainConfig, default_config

    checks.at_least("--processes", processes)
    ranks = []
    if processes > 1:
        from deepsky.distributed import launch_local

        argv = [a for k, a in enumerate(sys.argv[1:]) if not _is_processes_option(sys.argv[1:], k)]
        ranks = launch_local(processes, argv)

    for option, value in (("--epochs", epochs), ("--n", n), ("--batch-size", batch_size), ("--ensemble", ensemble)):
        checks.at_least(option, value)
    checks.at_least("--seed", seed, 0)
    checks.positive_number("--learning-rate", learning_rate)
    checks.new_folder(output)
    checks.output_apart(output, [data])
    if task is None and not resume:
        raise DeepskyError("name a task (see deepsky tasks), or pass --resume with an existing run")
    spec = tasks.get(task, **({"survey": survey} if survey else {})) if task else None
    if resume:  # the run's stored settings apply; only --epochs may extend them
        config = TrainConfig(epochs=epochs) if epochs else None
    else:
        config = default_config(spec, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                precision=precision, augment=augment, seed=seed, class_weight=class_weight,
                                rotations=rotations, ensemble=ensemble)
        config.check()  # before the progress display and the run directory
    run = _train_with_progress(output, n or (spec.default_train_size if spec else _stored_size(output)), task=task,
                               data=data, model_name=model, config=config, n=n, resume=resume,
                               task_options=spec.options if spec else None)
    if ranks:
        from deepsky.distributed import wait_for

        wait_for(ranks)
    print(f"model written to {run.model_path}")


def _stored_size(run_dir: Path) -> int | None:
    """The number of examples a run being resumed simulated (its progress bar's total), or None if unknown."""
    from deepsky.runs import Run

    try:
        return int(Run(run_dir).config["data"]["n"])
    except (DeepskyError, KeyError, TypeError, ValueError):  # not a run: train says so itself
        return None


def _is_processes_option(args: list[str], k: int) -> bool:
    """Whether ``args[k]`` is ``--processes``, its value, or ``--processes=N`` (left out of the other ranks' command)."""
    return (args[k] == "--processes" or args[k].startswith("--processes=")
            or (k > 0 and args[k - 1] == "--processes"))


def _train_with_progress(output, n_expected, **train_arguments):
    """``train_task`` with progress bars and a line per epoch; Ctrl-C says how to resume."""
    from deepsky.train import train_task

    console = _console()
    with _progress() as progress:
        bars = {}

        def on_simulate(k):
            if "sim" not in bars:
                bars["sim"] = _Bar(progress, "simulating", n_expected)
            bars["sim"].advance(k)

        def on_batch(epoch, b, steps, loss):
            key = f"epoch{epoch}"
            if key not in bars or b == 0:  # an epoch seen again is the next ensemble member's: a bar of its own
                bars[key] = _Bar(progress, f"epoch {epoch + 1}", steps)
            bars[key].advance(1, info=f"loss {loss:.3f}")

        def on_epoch(epoch, history):
            line = ", ".join(f"{k} {v[-1]:.4f}" for k, v in history.items() if k not in ("seconds", "threads"))
            threads = history.get("threads", [None])[-1]
            where = f", {threads:.3g} threads" if threads is not None else ""
            progress.console.print(f"epoch {epoch + 1}: {line} ({history['seconds'][-1]:.0f} s{where})")

        try:
            return train_task(train_arguments.pop("task"), output, **train_arguments, on_stage=console.print,
                              on_simulate=on_simulate, on_batch=on_batch, on_epoch=on_epoch)
        except KeyboardInterrupt:
            console.print(f"interrupted; continue with: deepsky train -o {output} --resume")
            raise typer.Exit(130)


@app.command()
def finetune(
    run_dir: Path = typer.Argument(..., help="Trained run to start from."),
    output: Path = typer.Option(..., "-o", "--output", help="Run directory to create."),
    task: Optional[str] = typer.Option(None, help="Task to fine-tune on (default: the run's task)."),
    freeze: int = typer.Option(0, help="Weight layers (convolutions, dense) to keep fixed, counted from the input."),
    data: Optional[Path] = typer.Option(None, help="Labelled data of the new task or survey (default: simulate)."),
    n: Optional[int] = typer.Option(None, "--n", help="Labelled examples to use (simulated, or the first of --data's training part)."),
    survey: Optional[str] = typer.Option(None, help="Survey preset of simulated cutouts (sdss, cfhtls...)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs (default: the task's)."),
    learning_rate: Optional[float] = typer.Option(None, help="Peak learning rate (default: the task's)."),
    seed: int = typer.Option(0, help="Seed for data, split and batches."),
):
    """Transfer learning: retrain a trained model on a new task or survey with its first layers frozen."""
    from deepsky import checks, tasks
    from deepsky.runs import Run
    from deepsky.train import default_config

    for option, value in (("--epochs", epochs), ("--n", n)):
        checks.at_least(option, value)
    checks.at_least("--freeze", freeze, 0)
    checks.at_least("--seed", seed, 0)
    checks.positive_number("--learning-rate", learning_rate)
    checks.new_folder(output)
    checks.output_apart(output, [run_dir, data])
    source = Run.open(run_dir)
    saved = source.config
    name = task or saved["task"]
    options = dict(saved.get("task_options") or {}) if name == saved["task"] else {}
    if survey:
        options["survey"] = survey
    spec = tasks.get(name, **options)
    if (spec.objective.name != saved.get("objective", spec.objective.name)
            and saved["task"] not in spec.initialised_from):
        raise DeepskyError(f"{run_dir} holds a {saved['objective']} model ({saved['task']}); {name} needs "
                           f"{spec.objective.name}: train one with deepsky train {name}")
    config = default_config(spec, epochs=epochs, learning_rate=learning_rate, seed=seed)
    config.check()
    run = _train_with_progress(output, n or spec.default_train_size, task=name, data=data, model_name=saved["model"],
                               config=config, n=n, task_options=spec.options,
                               model_options=saved.get("model_options") or {}, init_from=run_dir, freeze=freeze)
    transfer = run.config["transfer"]
    print(f"started from {run_dir} ({len(transfer['copied_layers'])} layers copied, "
          f"{len(transfer['frozen_layers'])} frozen); model written to {run.model_path}")


@app.command()
def experiment(
    kind: str = typer.Argument(..., help="optimizers, dropout, batchnorm, transfer, sim-to-real, transits or "
                                         "radio-fusion."),
    output: Path = typer.Option(..., "-o", "--output", help="Folder for experiment.json, figures and report.html."),
    data: Optional[Path] = typer.Option(None, help="Labelled catalogue (default: the SDSS DR17 sample); "
                                              "sim-to-real: a Galaxy Zoo folder (default: the shared galaxyzoo1_sdss)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs per variant (default: the experiment's); "
                                                    "sim-to-real: with all real labels, more for fewer."),
    n: Optional[int] = typer.Option(None, "--n", help="Training rows to use (default: all); for transfer, the new survey's "
                                                      "labels; for sim-to-real, simulated galaxies (default 10000)."),
    pretrained: Optional[Path] = typer.Option(None, help="transfer: a trained star-galaxy run to start from (default: train one)."),
    freeze: Optional[str] = typer.Option(None, help="transfer: comma-separated numbers of frozen layers to try."),
    labels: Optional[str] = typer.Option(None, help="sim-to-real: numbers of real labels, comma-separated, 'all' "
                                                    "for the whole training part (default 100,500,all)."),
    model: Optional[str] = typer.Option(None, help="radio-fusion: the network of the three binary classifiers "
                                                   "(default: the paper's AlexNet)."),
    seed: int = typer.Option(0, help="Seed for split, weights and batches."),
):
    """Measure what one ingredient does: optimizers, dropout, batch norm, transfer learning, sim-to-real, transits,
    radio-fusion."""
    from deepsky import checks
    from deepsky.experiments import run_experiment

    for option, value in (("--epochs", epochs), ("--n", n)):
        checks.at_least(option, value)
    checks.at_least("--seed", seed, 0)
    checks.new_folder(output)
    checks.output_apart(output, [data, pretrained])
    console = _console()

    def on_epoch(label, epoch, history):
        console.print(f"{label}: epoch {epoch + 1}, val_loss {history['val_loss'][-1]:.4f}, "
                      f"val_accuracy {history['val_accuracy'][-1]:.4f}")

    options = {"data": data, "epochs": epochs, "n": n, "seed": seed, "on_stage": console.print}
    if kind == "transfer":
        options.update(pretrained=pretrained, freeze=freeze)
    elif kind == "sim-to-real":
        options["labels"] = labels
    else:
        options["on_epoch"] = on_epoch
    if kind == "radio-fusion":
        options["model"] = model
    elif model is not None:
        raise DeepskyError("--model is for the radio-fusion experiment")
    path = run_experiment(kind, output, **options)
    print(f"report written to {path}")


@app.command()
def evaluate(
    run_dir: Path = typer.Argument(..., help="Run directory from deepsky train."),
    data: Optional[Path] = typer.Option(None, help="Labelled HDF5 test set (default: simulate a held-out one)."),
    n: Optional[int] = typer.Option(None, "--n", help="Test objects to simulate when no --data is given, or to draw from the held-out part of the folder the run trained on."),
):
    """Score a run on held-out data; writes RUN_DIR/metrics.json."""
    from deepsky import checks
    from deepsky.evaluate import evaluate_run
    from deepsky.runs import Run

    checks.at_least("--n", n)
    console = _console()
    with _progress() as progress:
        bars = {}

        def bar(name, total):
            def advance(k):
                if name not in bars:
                    bars[name] = _Bar(progress, name, total)
                bars[name].advance(k)
            return advance

        run = Run.open(run_dir)
        task = run.task()
        test_size = None if data else task.simulated_test_size(run.config, n)
        metrics = evaluate_run(run_dir, data=data, n=n, on_stage=console.print,
                               on_simulate=bar("simulating" if test_size else "reading", test_size or None),
                               on_predict=bar("predicting", test_size),
                               on_fit=bar("fitting", None if data else task.baseline_count(test_size)))
    _print_metrics(metrics, task.headline)
    print(f"metrics written to {run.metrics_path}")


def _print_metrics(metrics: dict, headline) -> None:
    """The task's headline figures: network, then the baseline's and the paper's where there are."""
    baseline = metrics.get("baseline") if isinstance(metrics.get("baseline"), dict) else None
    parts = []
    for line in headline:
        value = line.value(metrics)
        if value is None:
            continue
        text = f"{line.label} {_number(value, line.digits)}"
        other = line.value(baseline) if baseline else None
        if other is not None:
            text += f" (baseline {_number(other, line.digits)})"
        if line.paper is not None:
            text += f" [paper {line.paper:g}]"
        parts.append(text)
    print("held-out: " + "; ".join(parts))
    if baseline:
        print(f"baseline: {baseline.get('name')}")


def _number(value, digits: int) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


@app.command()
def report(run_dir: Path = typer.Argument(..., help="Run directory (evaluated).")):
    """Write RUN_DIR/report.html with its figures beside it."""
    from deepsky.report import write_report

    path = write_report(run_dir, on_stage=_console().print)
    print(f"report written to {path}")


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run directory of a trained model."),
    inputs: List[Path] = typer.Argument(..., help="Cutout stack (.h5, .npy), FITS image(s) with --catalog, or image files/folders (JPEG, PNG, FITS) for galaxy tasks; with --tiles, the survey's FITS tiles; a catalogue (CSV, FITS, Parquet, HATS folder) for catalogue tasks."),
    output: Path = typer.Option(..., "-o", "--output", help="Table to write: .fits, .csv or .parquet; with --tiles, --workers or --scheduler, a folder (Parquet parts and a manifest)."),
    catalog: Optional[Path] = typer.Option(None, help="Catalogue (CSV, FITS, Parquet; a HATS folder with --tiles) with id and ra/dec or x/y, for FITS images."),
    units: str = typer.Option("auto", help="Pixel units of a stack: auto, nanomaggies or luptitudes."),
    batch_size: int = typer.Option(256, help="Cutouts per batch."),
    views: Optional[int] = typer.Option(None, help="Regression and restoration tasks on cutouts: average 1, 2, 4 or 8 orientations of each cutout (more are slower and more precise; default: the task's)."),
    gallery: int = typer.Option(0, help="Also write OUTPUT_gallery.html: the N best-scored cutouts (two-class cutout tasks, e.g. lens-finding), for inspection by eye."),
    tiles: bool = typer.Option(False, "--tiles", help="INPUTS are survey tiles (FITS images with a WCS, one HDU per band): every --catalog row is predicted from the tile it lies deepest in, on Dask."),
    workers: Optional[int] = typer.Option(None, help="Run on Dask with this many local worker processes (default with --tiles or --scheduler: the cores this process may use)."),
    scheduler: Optional[str] = typer.Option(None, help="Address of a running Dask scheduler (tcp://host:8786) to run on instead of local workers."),
    ordered: bool = typer.Option(False, "--ordered", help="On Dask: also write OUTPUT/predictions.parquet in catalogue order."),
):
    """Predict every object (classes, or parameters with uncertainties); one row per input object, in input order.

    With --tiles, --workers or --scheduler the work runs on Dask, one Parquet part per tile, catalogue part or
    file under OUTPUT/parts, recorded in OUTPUT/manifest.json: rerun the same command after an interruption and
    it does only what is missing."""
    from deepsky import checks
    from deepsky.data.augment import VIEW_CHOICES

    checks.at_least("--batch-size", batch_size)
    checks.at_least("--gallery", gallery, 0)
    checks.one_of("--views", views, tuple(VIEW_CHOICES))
    checks.output_apart(output, [*inputs, catalog, run_dir])
    if tiles or workers is not None or scheduler:
        if workers is not None:
            checks.at_least("--workers", workers)
        if gallery or views is not None:
            raise DeepskyError("--gallery and --views are for a single-process predict; leave out --tiles, "
                               "--workers and --scheduler")
        return _predict_on_dask(run_dir, inputs, output, catalog, tiles, workers, scheduler, batch_size, ordered)
    if ordered:
        raise DeepskyError("--ordered sorts a Dask run's parts; a single-process predict keeps input order already")
    from deepsky.predict import predict_files

    with _progress() as progress:
        bars = {}

        def on_predict(k):
            if "p" not in bars:
                bars["p"] = _Bar(progress, "predicting", None)
            bars["p"].advance(k)

        summary = predict_files(run_dir, inputs, output, catalog=catalog, units=units, batch_size=batch_size,
                                on_predict=on_predict, views=views, gallery=gallery)
    print(f"wrote {summary['n']} rows to {output}" + (f" (input units: {summary['units']})" if summary.get("units") else ""))
    if summary.get("gallery"):
        print(f"wrote the {gallery} best candidates to {summary['gallery']}")


def _predict_on_dask(run_dir, inputs, output, catalog, tiles, workers, scheduler, batch_size, ordered):
    """``deepsky predict`` over tiles, a catalogue's parts or many files, with one progress bar per stage."""
    import time

    from deepsky.scale import predict_survey

    with _progress() as progress:
        bars, started = {}, {}

        def on_progress(stage, done, total, rows_done, rows_total):
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total, info="")
                started[stage] = (time.perf_counter(), rows_done)
            t0, rows0 = started[stage]
            rate = (rows_done - rows0) / max(time.perf_counter() - t0, 1e-9)
            info = f"{rows_done:,}/{rows_total:,} objects, {rate:,.0f}/s" if rows_total and stage == "predicting" else ""
            progress.update(bars[stage], completed=done, total=total, info=info)

        summary = predict_survey(run_dir, inputs, output, catalog=catalog, tiles=tiles, scheduler=scheduler,
                                 workers=workers, batch_size=batch_size, ordered=ordered, on_progress=on_progress)
    flagged = ", ".join(f"{n:,} {flag}" for flag, n in summary["flagged"].items() if n)
    print(f"wrote {summary['rows']:,} rows ({summary['predicted']:,} predicted" + (f"; {flagged}" if flagged else "")
          + f") in {summary['partitions']} parts to {summary['table']}"
          + (f", {summary['skipped']} parts already done" if summary["skipped"] else "")
          + f"; {summary['objects_per_second']:,.0f} objects/s over {summary['seconds']:.1f} s")
    if summary.get("ordered"):
        print(f"catalogue order: {summary['ordered']}")


def main():
    """Entry point: user errors become one line on stderr and exit status 2; SIGTERM acts as Ctrl-C."""
    import signal
    import warnings

    from deepsky.config import keep_freed_memory, set_thread_environment

    set_thread_environment()  # before torch loads: threads that spin briefly, then wait, not spin against a neighbour
    keep_freed_memory()  # simulators' and networks' temporaries reuse freed memory rather than page-faulting
    # libraries' warnings (astropy on odd FITS headers, numpy on huge values) are not the user's business:
    # what matters reaches them as deepsky's own line
    warnings.simplefilter("ignore")
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = app(standalone_mode=False)
    except DeepskyError as exc:
        _fail(str(exc))
    except typer.TyperException as exc:  # the parser's errors: a bad option value, a missing argument
        if type(exc).__name__ == "NoArgsIsHelpError":
            print(exc.format_message(), file=sys.stderr)
            sys.exit(2)
        context = getattr(exc, "ctx", None)
        command = context.command_path if context is not None else "deepsky"
        _fail(f"{exc.format_message()} (see {command} --help)")
    except typer.Abort:
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str):
    print(f"deepsky: error: {message}", file=sys.stderr)
    sys.exit(2)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
