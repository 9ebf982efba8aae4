"""Lens light removed by independent component analysis across bands (scikit-learn's FastICA).

A lens image in two or more bands is, pixel by pixel, a mix of two sources of different colour:
the red lens galaxy and the blue lensed arcs. FastICA un-mixes each image's (pixels, bands)
matrix into independent components; the component whose mixing weights are bluest (most flux
in the first band relative to the reference band) is the lensed source, and its share of the
reference band is what the network is given. Noise is spread over both components, so the
cleaned image is noisier than a truly lens-free one: the task's report shows what that costs.
"""

from __future__ import annotations

import numpy as np

from deepsky.errors import DeepskyError


def source_by_ica(images: np.ndarray, reference: int = -1, seed: int = 0) -> np.ndarray:
    """The lensed source alone in band ``reference``, for each (H, W, bands) image of ``images`` (N, H, W, bands).

    Returns (N, H, W, 1) float32 in the images' units: for every image, the bluest independent
    component times its mixing weight in the reference band.
    """
    import warnings

    from sklearn.decomposition import FastICA

    images = np.asarray(images, np.float64)
    if images.ndim != 4 or images.shape[-1] < 2:
        raise DeepskyError(f"lens light is separated across bands: need (N, H, W, bands >= 2); got {images.shape}")
    n, height, width, bands = images.shape
    out = np.empty((n, height, width, 1), np.float32)
    for i, image in enumerate(images):
        pixels = image.reshape(-1, bands)
        # un-mix on the pixels with light in them: pure-noise pixels are Gaussian, which ICA cannot separate
        noise = 1.4826 * np.median(np.abs(pixels - np.median(pixels, axis=0)), axis=0)
        lit = (pixels > 3 * noise).any(axis=1)
        train = pixels[lit] if lit.sum() >= 20 else pixels
        ica = FastICA(n_components=2, whiten="unit-variance", random_state=seed, max_iter=400, tol=1e-3)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on nearly empty images: the result is still usable
            ica.fit(train)
        components = ica.transform(pixels)  # (pixels, 2)
        mixing = ica.mixing_  # (bands, 2): band flux per unit of each component
        # a component and its weights may both change sign: make the weights' sum positive
        signs = np.sign(mixing.sum(axis=0))
        signs[signs == 0] = 1
        mixing, components = mixing * signs, components * signs
        blue = np.argmax(mixing[0] / np.maximum(np.abs(mixing[reference]), 1e-12) * np.sign(mixing[reference]))
        source = components[:, blue] * mixing[reference, blue]
        source -= np.median(source)  # the un-mixing keeps a mean level; the sky is zero
        out[i, ..., 0] = source.reshape(height, width)
    return out
