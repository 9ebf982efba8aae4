"""Measured demonstrations of the lecture's fundamentals, one command each.

``deepsky experiment optimizers|dropout|batchnorm`` trains the deep
feed-forward network of the ``sdss-photometry`` task once per variant on the
same split of the real SDSS catalogue and plots the learning curves side by
side; ``deepsky experiment transfer`` measures transfer learning against the
number of frozen layers; ``deepsky experiment sim-to-real`` pre-trains the
Galaxy Zoo network on simulated galaxies and measures what that is worth
against the number of real labels; ``deepsky experiment transits`` draws
Pearson et al.'s detection-rate figure for his three networks and two
classical detectors; ``deepsky experiment radio-fusion`` Aniyan & Thorat's
three-class fusion classifier. Each writes ``experiment.json``, ``figures/`` and
``report.html`` into its output folder.
"""

from __future__ import annotations

EXPERIMENTS = {
    "optimizers": "the lecture's optimizer table as a measurement: SGD, Nesterov momentum, Adagrad, Adadelta, RMSprop, Adam",
    "dropout": "a wide network with and without dropout (Srivastava et al. 2014)",
    "batchnorm": "a sigmoid network with and without batch normalisation (Ioffe & Szegedy 2015, the lecture's figure)",
    "transfer": "fine-tuning an SDSS-trained star-galaxy network on a few CFHTLS-like cutouts, against frozen layers",
    "sim-to-real": "galaxy morphology pre-trained on GalSim galaxies rendered as Galaxy Zoo images, against real labels",
    "transits": "Pearson et al.'s MLP, wavelet MLP and 1-D CNN against least squares and box least squares on his test grid",
    "radio-fusion": "Aniyan & Thorat's fusion of three binary networks (FRI, FRII, bent), '?' below 90%, against the paper's table",
}


def run_experiment(kind: str, out, **options):
    """Run experiment ``kind`` into the folder ``out``; return the path of its report.

    Parameters
    ----------
    kind : str
        One of :data:`EXPERIMENTS`.
    out : path
        Output folder (created; must not hold another experiment).
    **options
        Passed to the experiment (``data``, ``epochs``, ``seed``, ``n``, ``labels``, ...).
    """
    from deepsky.errors import DeepskyError

    if kind not in EXPERIMENTS:
        raise DeepskyError(f"unknown experiment {kind!r}; known experiments: {', '.join(EXPERIMENTS)}")
    if kind == "transfer":
        from deepsky.experiments.transfer import run_transfer

        return run_transfer(out, **options)
    if kind == "sim-to-real":
        from deepsky.experiments.sim_to_real import run_sim_to_real

        return run_sim_to_real(out, **options)
    if kind == "radio-fusion":
        from deepsky.experiments.radio_fusion import run_radio_fusion

        return run_radio_fusion(out, **options)
    if kind == "transits":
        from deepsky.experiments.transits import run_transits

        return run_transits(out, **options)
    from deepsky.experiments.fundamentals import run_fundamentals

    return run_fundamentals(kind, out, **options)
