#!/usr/bin/env bash
# The tests: set up .venv (with JAX for the backend test) and run pytest.
# Extra arguments go to pytest (e.g. ./test.sh -m slow).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/setup.sh torch,sim,jax,scale,dev
.venv/bin/python -m pytest "$@"
