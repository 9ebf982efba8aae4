#!/usr/bin/env bash
# The demo: simulate SDSS-like cutouts, train Kim & Brunner's ConvNet, evaluate it
# on a held-out simulated set, and write the report. A few minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh torch,sim
run="runs/demo-$(date +%Y%m%d-%H%M%S)"
.venv/bin/deepsky train star-galaxy -o "$run"
.venv/bin/deepsky evaluate "$run"
.venv/bin/deepsky report "$run"
