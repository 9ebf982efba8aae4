import contextlib
import io
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
# caches the tests fill (microlensing maps) go to a folder of this session, not the user's ~/.cache
if "DEEPSKY_CACHE" not in os.environ:
    import tempfile

    os.environ["DEEPSKY_CACHE"] = tempfile.mkdtemp(prefix="deepsky-test-cache-")
REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
DEEPSKY = [sys.executable, "-m", "deepsky.cli"]


def run_cli(*args, check=True, timeout=600):
    """Run the real ``deepsky`` command; returns the CompletedProcess."""
    result = subprocess.run([*DEEPSKY, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"deepsky {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def run_on_jax(script: str, timeout=600):
    """Run ``script`` in a fresh Python on Keras' JAX backend (CPU); returns the CompletedProcess."""
    # XLA's full optimisation of these graphs costs more compile time than the one step it speeds up
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "JAX_DISABLE_MOST_OPTIMIZATIONS": "1"}
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=timeout)


def run_in_process(*args, check=True):
    """Run ``deepsky.cli.main`` in this process (parsing, errors to exit status 2 and all).

    It saves starting Keras and torch afresh for each command (about 5 s); ``test_cli.py``
    keeps running the installed command itself. Returns what ``run_cli`` returns.
    """
    from deepsky.cli import main

    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["deepsky", *map(str, args)]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main()
                code = 0
            except SystemExit as exc:
                code = exc.code or 0
    finally:
        sys.argv = argv
    result = SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err.getvalue())
    if check and code != 0:
        raise AssertionError(f"deepsky {' '.join(map(str, args))} failed:\n{result.stdout}\n{result.stderr}")
    return result


def shared(name):
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"real data {path} is not on this machine (it ships beside the repository in ../shared)")
    return path


@pytest.fixture(scope="session")
def small_data(tmp_path_factory):
    """A small simulated star-galaxy set on disk (300 cutouts)."""
    path = tmp_path_factory.mktemp("data") / "sg.h5"
    run_cli("simulate", "star-galaxy", "--n", 300, "--seed", 5, "-o", path)
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_data):
    """A run directory trained for one epoch on ``small_data`` through the CLI."""
    out = tmp_path_factory.mktemp("runs") / "run"
    run_cli("train", "star-galaxy", "--data", small_data, "--epochs", 1, "-o", out)
    return out


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's package, installed by scripts/setup.sh with the dev extras) through Selenium."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    if webdriver is None or not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        reason = "headless Chromium is not installed (apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: the CI set-up must install it")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def report_problems(driver, page: Path) -> list[str]:
    """What a reader of ``page`` would see broken: images that do not load, figures on disk the page does not
    show, and errors in the browser's console."""
    driver.get_log("browser")  # forget what an earlier page logged
    import time

    driver.get(page.resolve().as_uri())
    script = "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth > 0])"
    deadline = time.monotonic() + 20  # large figures may still be decoding on a busy machine when load fires
    images = driver.execute_script(script)
    while not all(complete for _, complete, _ in images) and time.monotonic() < deadline:
        time.sleep(0.2)
        images = driver.execute_script(script)
    problems = [f"broken image {src}" for src, complete, drawn in images if not (complete and drawn)]
    shown = {src for src, _, _ in images}
    figures = page.parent / "figures"
    if figures.is_dir():
        problems += [f"figure not shown: {path.name}" for path in sorted(figures.glob("*.png"))
                     if f"figures/{path.name}" not in shown]
    problems += [f"console: {entry['message']}" for entry in driver.get_log("browser")
                 if entry["level"] in ("SEVERE", "WARNING")]
    return problems
