"""Survey presets: bands, pixel scale, seeing and noise, with units in the field names."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from deepsky.errors import DeepskyError

NANOMAGGY_ZEROPOINT = 22.5  # AB magnitude of a flux of 1 nanomaggy


@dataclass(frozen=True)
class Survey:
    """An imaging survey as deepsky simulates it.

    Fluxes are in nanomaggies (AB magnitude ``22.5 - 2.5 log10(flux)``), the
    SDSS calibrated unit; images are sky-subtracted nanomaggies per pixel.
    """

    name: str
    bands: tuple[str, ...]
    pixel_scale_arcsec: float
    cutout_pixels: int
    psf_fwhm_arcsec_range: tuple[float, float]  # seeing in the reference band
    psf_fwhm_band_ratio: tuple[float, ...]  # seeing in each band / reference band
    sky_noise_nmgy: tuple[float, ...]  # per-pixel standard deviation of the sky
    sky_mag_per_arcsec2: tuple[float, ...]
    reference_band: str = "r"

    @property
    def electrons_per_nmgy(self) -> np.ndarray:
        """Photo-electrons per nanomaggy, from sky level and sky noise (Poisson)."""
        sky_pixel_nmgy = 10 ** (-0.4 * (np.array(self.sky_mag_per_arcsec2) - NANOMAGGY_ZEROPOINT))
        sky_pixel_nmgy *= self.pixel_scale_arcsec**2
        return sky_pixel_nmgy / np.array(self.sky_noise_nmgy) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


# SDSS DR7 imaging. Sky noise per pixel is what the border pixels of Kim &
# Brunner's real cutouts show (shared/data/sdss_stargalaxy_cutouts); sky
# brightness and seeing are the survey's typical values (Stoughton et al. 2002).
SDSS = Survey(
    name="sdss",
    bands=("u", "g", "r", "i", "z"),
    pixel_scale_arcsec=0.396,
    cutout_pixels=48,
    psf_fwhm_arcsec_range=(1.0, 1.8),
    psf_fwhm_band_ratio=(1.12, 1.06, 1.0, 0.96, 0.95),
    sky_noise_nmgy=(0.030, 0.012, 0.028, 0.033, 0.118),
    sky_mag_per_arcsec2=(22.1, 21.8, 20.9, 20.2, 18.9),
)

# CFHTLS Wide (MegaCam u*,g',r',i',z'): finer pixels, better seeing and deeper than SDSS, the
# same five bands, so a network trained on SDSS cutouts can be carried over to it. Per-pixel sky
# noise follows from the 5-sigma point-source depths u 25.2, g 25.5, r 24.8, i 24.5, z 23.9
# (Gwyn 2012, AJ 143, 38) in the survey's median 0.7 arcsec seeing; Mauna Kea dark sky.
CFHTLS = Survey(
    name="cfhtls",
    bands=("u", "g", "r", "i", "z"),
    pixel_scale_arcsec=0.187,
    cutout_pixels=48,
    psf_fwhm_arcsec_range=(0.55, 0.95),
    psf_fwhm_band_ratio=(1.15, 1.08, 1.0, 0.95, 0.93),
    sky_noise_nmgy=(0.0030, 0.0023, 0.0043, 0.0056, 0.0098),
    sky_mag_per_arcsec2=(22.7, 22.0, 21.2, 20.5, 19.5),
)

# Euclid VIS: one broad band (550-900 nm) at 0.1 arcsec/pixel with a diffraction-limited
# PSF of about 0.17 arcsec FWHM. Sky noise per pixel from the Wide Survey's 24.5 AB 10-sigma
# depth for a 0.3 arcsec galaxy (Euclid Collaboration: Scaramella et al. 2022, A&A 662, A112);
# zodiacal sky at high ecliptic latitude.
EUCLID_VIS = Survey(
    name="euclid",
    bands=("VIS",),
    pixel_scale_arcsec=0.1,
    cutout_pixels=64,
    psf_fwhm_arcsec_range=(0.16, 0.18),
    psf_fwhm_band_ratio=(1.0,),
    sky_noise_nmgy=(0.0030,),
    sky_mag_per_arcsec2=(22.2,),
    reference_band="VIS",
)

# HST WFC3/IR F160W (H band) as in CANDELS-wide mosaics drizzled to 0.06 arcsec/pixel, PSF
# about 0.18 arcsec FWHM; sky noise per pixel from the 5-sigma point-source depth H = 27.0 in
# a 0.17 arcsec radius aperture (Grogin et al. 2011; Koekemoer et al. 2011), the data of
# Tuccillo et al.'s structural-parameter networks.
HST_CANDELS_H = Survey(
    name="hst-candels",
    bands=("H",),
    pixel_scale_arcsec=0.06,
    cutout_pixels=64,
    psf_fwhm_arcsec_range=(0.17, 0.19),
    psf_fwhm_band_ratio=(1.0,),
    sky_noise_nmgy=(0.00063,),
    sky_mag_per_arcsec2=(22.4,),
    reference_band="H",
)

# LSST: one g-band visit (30 s) at 0.2 arcsec/pixel, as in Lanusse et al.'s (2018) CMU DeepLens
# simulations. Per-pixel sky noise from the single-visit 5-sigma point-source depth g = 24.8
# (LSST Science Book; Ivezic et al. 2019) over the noise-equivalent area of a 0.75 arcsec PSF;
# Cerro Pachon dark sky g = 22.3 mag/arcsec^2.
LSST_G = Survey(
    name="lsst",
    bands=("g",),
    pixel_scale_arcsec=0.2,
    cutout_pixels=45,
    psf_fwhm_arcsec_range=(0.6, 0.9),
    psf_fwhm_band_ratio=(1.0,),
    sky_noise_nmgy=(0.0043,),
    sky_mag_per_arcsec2=(22.3,),
    reference_band="g",
)

# KiDS (VST/OmegaCAM u, g, r, i at 0.2 arcsec/pixel), the survey of Petrillo et al. (2017) and of
# the lens-finding challenge's ground-based set. Per-pixel sky noise from the 5-sigma depths in a
# 2 arcsec aperture u 24.2, g 25.1, r 25.0, i 23.7 (de Jong et al. 2015; Kuijken et al. 2019);
# r is taken in the best seeing, u and g somewhat worse; Paranal dark sky.
KIDS = Survey(
    name="kids",
    bands=("u", "g", "r", "i"),
    pixel_scale_arcsec=0.2,
    cutout_pixels=64,
    psf_fwhm_arcsec_range=(0.55, 0.9),
    psf_fwhm_band_ratio=(1.45, 1.25, 1.0, 1.15),
    sky_noise_nmgy=(0.0047, 0.0019, 0.0021, 0.0068),
    sky_mag_per_arcsec2=(22.4, 22.1, 21.1, 20.0),
)

# HST ACS/WFC F475W and F814W drizzled to 0.04 arcsec/pixel: the HST-like images of Hezaveh et al.
# (2017), whose network reads F814W; F475W beside it lets lens light be told from the bluer arcs.
# PSF about 0.1 arcsec FWHM; sky noise per pixel from one-orbit 5-sigma point-source depths
# F475W 27.3 and F814W 27.0 over the PSF's noise-equivalent area (ACS instrument handbook).
HST_ACS = Survey(
    name="hst-acs",
    bands=("F475W", "F814W"),
    pixel_scale_arcsec=0.04,
    cutout_pixels=96,
    psf_fwhm_arcsec_range=(0.09, 0.11),
    psf_fwhm_band_ratio=(0.9, 1.0),
    sky_noise_nmgy=(0.00064, 0.00084),
    sky_mag_per_arcsec2=(22.6, 22.0),
    reference_band="F814W",
)

SURVEYS = {s.name: s for s in (SDSS, CFHTLS, EUCLID_VIS, HST_CANDELS_H, LSST_G, KIDS, HST_ACS)}


def get_survey(name: str) -> Survey:
    """Survey preset by name (``sdss``, ``cfhtls``, ``euclid``, ``hst-candels``, ``lsst``, ``kids``, ``hst-acs``)."""
    try:
        return SURVEYS[name.lower()]
    except KeyError:
        raise DeepskyError(f"unknown survey {name!r}; known surveys: {', '.join(SURVEYS)}") from None


def nmgy_to_mag(flux):
    """AB magnitude of a flux in nanomaggies."""
    return NANOMAGGY_ZEROPOINT - 2.5 * np.log10(flux)


def mag_to_nmgy(mag):
    """AB magnitude to flux in nanomaggies."""
    return 10 ** (-0.4 * (np.asarray(mag) - NANOMAGGY_ZEROPOINT))
