#!/usr/bin/env bash
# The demo: simulate a task's data, train its network, evaluate it on held-out data and write
# the report. ./demo.sh runs star-galaxy (simulated SDSS-like cutouts, Kim & Brunner's ConvNet,
# a few minutes on 2 cores); ./demo.sh galaxy-profiles the structural-parameter task against the
# least-squares fit (about 15 minutes); ./demo.sh galaxy-morphology the Galaxy Zoo classifier
# (needs ../shared/data/galaxyzoo1_sdss, about 20 minutes); ./demo.sh transit-detection Pearson et al.'s
# transit finder against least squares and box least squares (about a minute); ./demo.sh transit-vetting
# AstroNet on the real TESS signals (needs ../shared/data/tess_astronet_triage, about 5 minutes);
# ./demo.sh radio-morphology AlexNet on MiraBest's FIRST images (about 8 minutes), ./demo.sh real-bogus
# Deep-HiTS against a random forest (about 15 minutes), ./demo.sh deconvolution the pix2pix GAN against
# Richardson-Lucy (about 40 minutes); ./demo.sh gw-detection George & Huerta's Deep Filtering against matched
# filtering (about 30 minutes), ./demo.sh gw-masses their mass predictor (about 15 minutes), ./demo.sh
# microlensing Vernardos & Tsagkatakis' disc-size classifier on ray-shot maps (about 25 minutes); ./demo.sh
# lens-finding CMU DeepLens on LSST-like lenses and hard non-lenses (about 35 minutes).
set -euo pipefail
cd "$(dirname "$0")"
task="${1:-star-galaxy}"
bash scripts/setup.sh torch,sim
run="runs/${task}-$(date +%Y%m%d-%H%M%S)"
data=()
if [ "$task" = galaxy-morphology ]; then
  data=(--data ../shared/data/galaxyzoo1_sdss)
fi
.venv/bin/deepsky train "$task" "${data[@]}" -o "$run"
.venv/bin/deepsky evaluate "$run"
.venv/bin/deepsky report "$run"
