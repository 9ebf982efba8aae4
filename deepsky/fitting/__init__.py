"""Classical fits of galaxy images: the baselines the networks are compared with.

``sersic``: a GALFIT-style PSF-convolved Sersic fit (Peng et al. 2002) by weighted least
squares, with a numpy renderer checked against GalSim. Importing this package loads neither
GalSim nor a deep-learning backend.
"""

from deepsky.fitting.sersic import (
    PARAMETERS,
    SersicModel,
    fit_many,
    fit_profiles,
    fit_sersic,
    initial_guess,
    psf_image,
    render_sersic,
    sersic_b,
)

__all__ = [
    "PARAMETERS",
    "SersicModel",
    "fit_many",
    "fit_profiles",
    "fit_sersic",
    "initial_guess",
    "psf_image",
    "render_sersic",
    "sersic_b",
]
