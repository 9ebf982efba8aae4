#!/usr/bin/env bash
# Create .venv/ in the repository root and install deepsky with what the demo
# and the tests need. Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-torch,sim}"
python="${PYTHON:-python3.11}"
command -v "$python" >/dev/null || python=python3
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/pip install --quiet --upgrade pip
fi
# torch first, pinned: a later unpinned request would pull a CUDA build.
.venv/bin/pip install --quiet -c constraints.txt "torch==2.13.0"
.venv/bin/pip install --quiet -c constraints.txt -e ".[${extras}]"
# The tests open every report in headless Chromium (Debian's package): installed where this
# user may install system packages; elsewhere the browser test says how to get it (and fails in CI).
if [[ ",${extras}," == *",dev,"* ]] && ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; }; then
    apt=""
    if [ "$(id -u)" = 0 ]; then apt="apt-get"; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then apt="sudo apt-get"; fi
    if [ -n "$apt" ] && command -v apt-get >/dev/null; then
        $apt install -y -q chromium chromium-driver >/dev/null 2>&1 \
            || { $apt update -q >/dev/null 2>&1 && $apt install -y -q chromium chromium-driver >/dev/null 2>&1; } \
            || echo "setup: could not install chromium and chromium-driver; the report browser test will not run" >&2
    fi
fi
