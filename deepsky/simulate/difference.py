"""Real/bogus candidates from difference imaging, HiTS/DECam-like (Cabrera-Vives et al. 2017, "Deep-HiTS").

Each candidate is a 21 x 21 pixel stamp (0.27 arcsec/pixel) with four channels, in this order:

template
    The reference image, registered to the science image but not convolved: deeper (about half
    the sky noise) and usually in better seeing.
science
    The new image, seeing 0.8-1.8 arcsec FWHM.
difference
    ``science - scale * (kernel * template)`` when the template is the sharper image, and
    ``kernel * science - scale * template`` otherwise: the sharper image is convolved with a
    Gaussian kernel whose width is the quadrature difference of the two PSF widths as the
    pipeline *measured* them (with errors of about 2%), and ``scale`` is the pipeline's
    photometric ratio (errors of about 1%). Imperfect matching and a small registration error
    leave dipoles and rings on bright stars and galaxy cores, as in real pipelines.
snr
    The difference divided by its per-pixel noise, the pipeline's estimate from both images'
    sky and source Poisson variance (the covariance that the kernel brings is ignored, as
    pipelines do; it makes the true noise of the matched filter typically 10%, at most 60%,
    larger, which is why pure noise peaks pass a 5-sigma cut as often as they do).

Template, science and difference are sky-subtracted fluxes in nanomaggies per pixel (AB
magnitude ``22.5 - 2.5 log10(flux)``); the snr channel is dimensionless.

The scene behind a candidate is empty sky, a star, or a galaxy (de Vaucouleurs bulge plus
exponential disk, sizes shrinking with magnitude as in :mod:`deepsky.simulate.stargalaxy`) present
in both images, each image with its own PSF: the sharper image's PSF is a Moffat (beta 2.5-4.5),
the blurrier one's that Moffat convolved with a Gaussian. Noise is Gaussian sky at each
image's depth plus source Poisson noise.

Candidates, their ``kind`` (``objects["kind"]``, the name) and its code (``objects["kind_code"]``,
an index into ``meta["kinds"]``):

label 1, real: a point source with the science PSF, in the science image only, within 1 pixel of
the stamp centre, with a matched-filter S/N in the difference drawn log-uniformly in 5-100:

==  ================  =====================================================================
0   transient         on empty sky (40% with an unrelated galaxy 6-10 pixels away)
1   supernova         on a galaxy, 0-1.5 half-light radii from its centre (40% of reals)
2   variable-star     on a star present in both images but brighter in the science image
==  ================  =====================================================================

label 0, bogus: what a 5-sigma detector flags that is not astrophysical change:

==  ================  =====================================================================
3   bad-subtraction   a bright star or compact galaxy core subtracted with a registration
                      error of 0.2-1 pixel (dipole) or with PSF widths mis-measured by 4-12%
                      and a photometric scale off by a few percent (ring, core residual)
4   cosmic-ray        a sharp track of 2-8 pixels, 1-2 pixels wide, in the science image,
                      not convolved with the PSF
5   bad-pixel         a hot pixel or a column or row segment, in the science image (positive
                      in the difference) or in the template (negative, and blurred by the
                      kernel when the template is the convolved image)
6   saturated-star    a star whose core is clipped at saturation in the science image (1.2-8
                      times over), with a bleed trail along its columns; templates are
                      stacks of shorter exposures and saturate 4 times higher
7   noise             a sky-noise peak: the noise of both images conditioned (exactly, as a
                      Gaussian) on the detection statistic at the centre exceeding 5
==  ================  =====================================================================

Cosmic rays and bad pixels fall on empty sky, beside a galaxy, on a galaxy or on a star; noise
peaks on empty sky or beside a galaxy.

Bogus features 3-5 are scaled so that their matched-filter S/N follows the reals' distribution
(5-100), so brightness alone does not separate the classes; saturated stars are brighter, noise
peaks sit just above 5.

``objects["snr"]`` is the detection statistic of the candidate: the magnitude of the
matched-filter (PSF-weighted) S/N of the difference image, ``sum(P D / V) / sqrt(sum(P^2 / V))``
with ``P`` the blurrier image's PSF and ``V`` the per-pixel variance of the difference, at the
position within 2 pixels of the stamp centre where that magnitude is largest;
``objects["snr_signed"]`` keeps its sign (negative for template artefacts, the negative lobe of
dipoles and clipped cores).

Rendering is vectorised numpy in Fourier space on a 48-pixel grid that is cropped to the stamp:
GalSim provides the Fourier transforms of the Moffat and de Vaucouleurs profiles (tabulated once
per process), profiles are elliptical by stretching the wave vector, and pixel response, PSFs,
kernel and sub-pixel positions are products there. Chunks of stamps are drawn in worker
processes, each chunk with its own seed, so the same seed gives the same bytes for any number
of workers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.parallel import map_in_processes
from deepsky.simulate.surveys import NANOMAGGY_ZEROPOINT, mag_to_nmgy, nmgy_to_mag

SIMULATOR_VERSION = "real-bogus-1"
CLASSES = ("bogus", "real")
BANDS = ("template", "science", "difference", "snr")
KINDS = (
    "transient", "supernova", "variable-star",  # real
    "bad-subtraction", "cosmic-ray", "bad-pixel", "saturated-star", "noise",  # bogus
)
# the codes of KINDS
TRANSIENT, SUPERNOVA, VARIABLE_STAR, BAD_SUBTRACTION, COSMIC_RAY, BAD_PIXEL, SATURATED_STAR, NOISE = range(8)
REAL_KIND_FRACTIONS = (0.35, 0.40, 0.25)
BOGUS_KIND_FRACTIONS = (0.30, 0.20, 0.15, 0.10, 0.25)
CHUNK = 500  # stamps per worker task: each chunk has its own seed, so results do not depend on workers
DETECTION_SNR = 5.0
TARGET_SNR_RANGE = (5.0, 100.0)
SEARCH_RADIUS_PIXELS = 2  # the detection peak is looked for this far from the stamp centre
MOFFAT_BETAS = (2.5, 3.0, 3.5, 4.5)  # a few values, each tabulated once
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))
_GRID = 48  # render grid, cropped to the stamp; galaxy sizes and offsets are bounded so little light wraps round
_BRIGHTEST_MAG = 13.0  # bad-subtraction sources are never brighter than this


@dataclass(frozen=True)
class DifferenceImaging:
    """A difference-imaging survey as deepsky simulates it (fluxes in nanomaggies, per pixel).

    The default is DECam g band as HiTS observed it: a science image with a 5-sigma point-source
    depth of about 24.3 mag in 1.2 arcsec seeing, and a template about 0.7 mag deeper (half the
    sky noise). Sky noise is a per-pixel standard deviation; saturation levels are per pixel
    above the sky.
    """

    name: str = "decam-hits"
    band: str = "g"
    pixel_scale_arcsec: float = 0.27
    stamp_pixels: int = 21
    science_fwhm_arcsec_range: tuple[float, float] = (0.8, 1.8)
    template_seeing_ratio_range: tuple[float, float] = (0.6, 1.1)  # template FWHM / science FWHM
    template_fwhm_arcsec_min: float = 0.7
    science_sky_noise_nmgy: float = 0.0057
    template_sky_noise_nmgy: float = 0.0029
    sky_mag_per_arcsec2: float = 22.0  # dark sky at Cerro Tololo in g
    science_saturation_nmgy_per_pixel: float = 11.0  # about 40,000 electrons above the sky
    template_saturation_nmgy_per_pixel: float = 44.0
    fwhm_error_fraction: float = 0.02  # the pipeline's error on each image's PSF FWHM
    flux_scale_error_fraction: float = 0.01  # its error on the photometric ratio of the images
    registration_error_pixels: float = 0.03  # its astrometric registration error, per axis

    @property
    def science_electrons_per_nmgy(self) -> float:
        """Photo-electrons per nanomaggy in the science image, from sky level and sky noise (Poisson)."""
        return self._sky_pixel_nmgy() / self.science_sky_noise_nmgy**2

    @property
    def template_electrons_per_nmgy(self) -> float:
        """Electrons per nanomaggy of the template (a stack: more exposure, same sky per second)."""
        return self._sky_pixel_nmgy() / self.template_sky_noise_nmgy**2

    def _sky_pixel_nmgy(self) -> float:
        return 10 ** (-0.4 * (self.sky_mag_per_arcsec2 - NANOMAGGY_ZEROPOINT)) * self.pixel_scale_arcsec**2

    def to_dict(self) -> dict:
        return asdict(self)


DECAM_HITS = DifferenceImaging()


# -- parameters -----------------------------------------------------------------------------
def _polar(rng, radius, n):
    angle = rng.uniform(0, 2 * np.pi, n)
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)


def _moffat_peak_fraction(fwhm_pixels, beta):
    """Fraction of a Moffat's flux in its central pixel (peak surface brightness times one pixel)."""
    alpha = fwhm_pixels / (2 * np.sqrt(2 ** (1 / beta) - 1))
    return (beta - 1) / (np.pi * alpha**2)


def draw_parameters(n: int, seed: int, real_fraction: float = 0.5, survey: DifferenceImaging = DECAM_HITS) -> dict:
    """Draw the parameters of ``n`` candidates; returns a dict of (n, ...) arrays.

    Every parameter is drawn for every candidate (most are unused by most kinds), so that one
    random stream serves all. Positions and sizes are in pixels (offsets from the stamp centre,
    x then y) unless the name says arcsec; fluxes in nanomaggies; magnitudes AB.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    px = survey.pixel_scale_arcsec
    real = rng.random(n) < real_fraction
    kind = np.where(
        real, rng.choice(3, n, p=REAL_KIND_FRACTIONS), BAD_SUBTRACTION + rng.choice(5, n, p=BOGUS_KIND_FRACTIONS)
    )
    science_fwhm = rng.uniform(*survey.science_fwhm_arcsec_range, n)
    template_fwhm = np.maximum(
        science_fwhm * rng.uniform(*survey.template_seeing_ratio_range, n), survey.template_fwhm_arcsec_min
    )
    beta_index = rng.integers(0, len(MOFFAT_BETAS), n)
    science_noise = survey.science_sky_noise_nmgy * rng.uniform(0.8, 1.3, n)  # sky brightness, transparency
    template_noise = survey.template_sky_noise_nmgy * rng.uniform(0.8, 1.3, n)
    fwhm_error = rng.normal(0, survey.fwhm_error_fraction, (n, 2))  # science, template
    flux_scale = 1 + rng.normal(0, survey.flux_scale_error_fraction, n)
    misalignment = rng.normal(0, survey.registration_error_pixels, (n, 2))
    lo, hi = TARGET_SNR_RANGE
    target_snr = lo * (hi / lo) ** rng.random(n)
    candidate = rng.uniform(-1, 1, (n, 2))

    # galaxies: bulge + disk, sizes shrinking with magnitude as in the star-galaxy simulator
    galaxy_mag = rng.uniform(18, 23, n)
    early = rng.random(n) < 0.35
    bulge_fraction = np.where(early, rng.uniform(0.6, 1.0, n), rng.beta(1.2, 4.0, n))
    log_re = 0.3 - 0.15 * (galaxy_mag - 18.0) + rng.normal(0, 0.3, n) - 0.15 * early
    # at most 2.5 arcsec, and centres at most 11 pixels from the stamp's: the light that the 48-pixel
    # render grid wraps around then stays below the sky noise, about 1% of the local light (it cancels
    # in the difference)
    hlr_arcsec = np.clip(10**log_re, 0.2, 2.5)
    bulge_radius_ratio = rng.uniform(0.3, 0.7, n)
    cos_i = rng.random(n)
    disk_q = np.sqrt(cos_i**2 * (1 - 0.15**2) + 0.15**2)
    bulge_q = rng.uniform(0.55, 1.0, n)
    position_angle = rng.uniform(0, np.pi, n)
    # what lies behind hostless transients and most bogus: 0 nothing, 1 a neighbouring galaxy,
    # 2 a galaxy under the candidate, 3 a star under it
    background = rng.choice(4, n, p=[0.45, 0.25, 0.15, 0.15])
    neighbour_offset = _polar(rng, rng.uniform(6, 10, n), n)  # from the candidate, itself within 1 pixel
    under_offset = _polar(rng, np.minimum(rng.uniform(0, 1, n) * hlr_arcsec / px, 9), n)
    host_offset = _polar(rng, np.minimum(rng.uniform(0, 1.5, n) * hlr_arcsec / px, 9), n)
    star_mag = rng.uniform(17, 23, n)

    badsub_galaxy = rng.random(n) < 0.45
    badsub_hlr_arcsec = rng.uniform(0.3, 1.2, n)
    badsub_misaligned = rng.random(n) < 0.5
    badsub_shift = _polar(rng, rng.uniform(0.2, 1.0, n), n)
    badsub_fwhm_error = rng.uniform(0.04, 0.12, n) * rng.choice([-1.0, 1.0], n)
    badsub_scale = 1 + rng.normal(0, 0.03, n)
    bad_pixel_shape = rng.choice(3, n, p=[0.35, 0.50, 0.15])  # hot pixel, column, row segment
    bad_pixel_length = rng.integers(4, 22, n)
    bad_pixel_in_template = rng.random(n) < 0.3
    cr_length = rng.uniform(2, 8, n)
    cr_width = rng.choice([1, 2], n, p=[0.6, 0.4])
    cr_angle = rng.uniform(0, np.pi, n)
    overshoot = np.exp(rng.uniform(np.log(1.2), np.log(8.0), n))

    # assemble the scene: one galaxy, one star and one transient slot per stamp; fluxes are
    # base + amplitude * coef, where the amplitude is solved for in rendering to hit target_snr
    z = np.zeros(n)
    galaxy_flux, galaxy_coef, galaxy_pos = z.copy(), z.copy(), np.zeros((n, 2))
    star_flux, star_coef, star_pos = z.copy(), z.copy(), candidate.copy()
    transient_coef = (kind <= VARIABLE_STAR).astype(float)
    galaxy_hlr = hlr_arcsec / px
    hostless = (kind == TRANSIENT) | (kind == COSMIC_RAY) | (kind == BAD_PIXEL) | (kind == NOISE)
    # nothing under hostless transients, nor under noise peaks (a residual there would make them bad subtractions)
    background = np.where(((kind == TRANSIENT) | (kind == NOISE)) & (background >= 2), background - 2, background)
    neighbour = hostless & (background == 1)
    galaxy_flux[neighbour] = mag_to_nmgy(galaxy_mag[neighbour])
    galaxy_pos[neighbour] = candidate[neighbour] + neighbour_offset[neighbour]
    under = hostless & (background == 2)
    galaxy_flux[under] = mag_to_nmgy(galaxy_mag[under])
    galaxy_pos[under] = candidate[under] - under_offset[under]
    star_under = hostless & (background == 3)
    star_flux[star_under] = mag_to_nmgy(star_mag[star_under])
    sn = kind == SUPERNOVA
    galaxy_flux[sn] = mag_to_nmgy(galaxy_mag[sn])
    galaxy_pos[sn] = candidate[sn] - host_offset[sn]
    variable = kind == VARIABLE_STAR
    star_flux[variable] = mag_to_nmgy(star_mag[variable])
    badsub = kind == BAD_SUBTRACTION
    galaxy_coef[badsub & badsub_galaxy] = 1.0
    galaxy_pos[badsub & badsub_galaxy] = candidate[badsub & badsub_galaxy]
    galaxy_hlr = np.where(badsub & badsub_galaxy, badsub_hlr_arcsec / px, galaxy_hlr)
    star_coef[badsub & ~badsub_galaxy] = 1.0
    shifted = badsub & badsub_misaligned
    misalignment[shifted] = badsub_shift[shifted]
    mismatched = badsub & ~badsub_misaligned
    fwhm_error[mismatched, 0] = badsub_fwhm_error[mismatched]
    flux_scale[mismatched] = badsub_scale[mismatched]
    saturated = kind == SATURATED_STAR
    peak = _moffat_peak_fraction(science_fwhm / px, np.asarray(MOFFAT_BETAS)[beta_index])
    star_flux[saturated] = (overshoot * survey.science_saturation_nmgy_per_pixel / peak)[saturated]
    # 0 none, 1 in the science image, 2 in the template
    artefact_image = np.where(kind == COSMIC_RAY, 1, 0)
    artefact_image[kind == BAD_PIXEL] = np.where(bad_pixel_in_template, 2, 1)[kind == BAD_PIXEL]

    galaxy_present = (galaxy_flux > 0) | (galaxy_coef > 0)
    on_galaxy = galaxy_present & (np.hypot(*(candidate - galaxy_pos).T) <= 1.5 * galaxy_hlr)
    return {
        "label": real.astype(np.int64),
        "kind": kind.astype(np.int16),
        "science_fwhm_arcsec": science_fwhm,
        "template_fwhm_arcsec": template_fwhm,
        "beta_index": beta_index,
        "science_noise_nmgy": science_noise,
        "template_noise_nmgy": template_noise,
        "fwhm_error": fwhm_error,
        "flux_scale": flux_scale,
        "misalignment_pixels": misalignment,
        "target_snr": np.where((kind == SATURATED_STAR) | (kind == NOISE), np.nan, target_snr),
        "candidate_pixels": candidate,
        "galaxy_flux": galaxy_flux,
        "galaxy_coef": galaxy_coef,
        "galaxy_pixels": galaxy_pos,
        "galaxy_hlr_pixels": galaxy_hlr,
        "galaxy_mag": np.where(galaxy_flux > 0, galaxy_mag, np.nan),
        "bulge_fraction": bulge_fraction,
        "bulge_radius_ratio": bulge_radius_ratio,
        "disk_axis_ratio": disk_q,
        "bulge_axis_ratio": bulge_q,
        "position_angle_rad": position_angle,
        "star_flux": star_flux,
        "star_coef": star_coef,
        "star_pixels": star_pos,
        "transient_coef": transient_coef,
        "artefact_image": artefact_image,
        "bad_pixel_shape": bad_pixel_shape,
        "bad_pixel_length": bad_pixel_length,
        "cr_length_pixels": cr_length,
        "cr_width_pixels": cr_width,
        "cr_angle_rad": cr_angle,
        "on_galaxy": on_galaxy,
    }


# -- rendering ---------------------------------------------------------------------------------
_TABLES: dict = {}
_MOFFAT_X_MAX = 40.0  # wave number x FWHM beyond which a Moffat's transform is < 1e-14
_MOFFAT_STRIDE = 50.0  # the betas' tables sit side by side on one axis, one np.interp for all


def _tables():
    """GalSim's Fourier transforms of unit Moffats (per FWHM) and de Vaucouleurs (per half-light radius)."""
    if not _TABLES:
        import galsim

        x = np.linspace(0, _MOFFAT_X_MAX, 2000)
        xs, ys = [], []
        for b, beta in enumerate(MOFFAT_BETAS):
            moffat = galsim.Moffat(beta=beta, fwhm=1.0)
            xs.append(b * _MOFFAT_STRIDE + x)
            ys.append([moffat.kValue(galsim.PositionD(float(k), 0.0)).real for k in x])
        _TABLES["moffat"] = (np.concatenate(xs), np.concatenate(ys))
        # truncated at 8 half-light radii like the star-galaxy simulator's bulges; the cusp makes
        # the transform fall slowly, so the table reaches far, on a logarithmic grid
        x = np.concatenate([[0.0], np.geomspace(1e-3, 300.0, 3000)])
        dev = galsim.DeVaucouleurs(half_light_radius=1.0, trunc=8.0)
        _TABLES["dev"] = (x, np.array([dev.kValue(galsim.PositionD(float(k), 0.0)).real for k in x]))
    return _TABLES


def _rfft(a):
    from scipy import fft

    return fft.rfft2(a, axes=(-2, -1))


def _irfft(a):
    from scipy import fft

    return fft.irfft2(a, s=(_GRID, _GRID), axes=(-2, -1))


def _phase(kx, ky, pos, centre):
    """exp(-i k.x) for positions ``pos`` (m, 2) in pixels from ``centre``; separable, so cheap."""
    px = np.exp(-1j * kx * (centre + pos[:, 0])[:, None, None]).astype(np.complex64)
    py = np.exp(-1j * ky * (centre + pos[:, 1])[:, None, None]).astype(np.complex64)
    return px * py


def _stretched_k2(kx, ky, q, angle):
    """|k|^2 seen by a unit circular profile sheared to axis ratio ``q`` (area kept) at ``angle``."""
    f = lambda a: a.astype(np.float32)[:, None, None]  # noqa: E731
    c, s, q = f(np.cos(angle)), f(np.sin(angle)), f(q)
    ku = kx * c + ky * s
    kv = ky * c - kx * s
    return ku**2 / q + kv**2 * q


def _galaxy_ft(p, kx, ky):
    """Unit-flux Fourier transform of each stamp's bulge + disk galaxy, centred on the origin."""
    tables = _tables()
    f = lambda a: a.astype(np.float32)[:, None, None]  # noqa: E731
    hlr = p["galaxy_hlr_pixels"]
    pa = p["position_angle_rad"]
    disk_scale = hlr / 1.6783469900166605  # exponential scale length from half-light radius
    disk = (1 + _stretched_k2(kx, ky, p["disk_axis_ratio"], pa) * f(disk_scale) ** 2) ** -1.5
    arg = np.sqrt(_stretched_k2(kx, ky, p["bulge_axis_ratio"], pa)) * f(hlr * p["bulge_radius_ratio"])
    bulge = np.interp(arg, *tables["dev"], right=0.0).astype(np.float32)
    fb = f(p["bulge_fraction"])
    return fb * bulge + (1 - fb) * disk


def _cosmic_ray(rng, p, i, size, centre):
    """A unit-peak sharp track (2-8 pixels long, 1-2 wide) near the centre, deposited pixel by pixel."""
    layer = np.zeros((size, size))
    length, angle = p["cr_length_pixels"][i], p["cr_angle_rad"][i]
    t = np.linspace(-length / 2, length / 2, int(4 * length) + 1)
    x0, y0 = centre + p["candidate_pixels"][i]
    x, y = x0 + t * np.cos(angle), y0 + t * np.sin(angle)
    weight = rng.uniform(0.6, 1.4, len(t))  # energy deposit varies along the track
    np.add.at(layer, (np.rint(y).astype(int), np.rint(x).astype(int)), weight)
    if p["cr_width_pixels"][i] == 2:
        xs, ys = x - np.sin(angle), y + np.cos(angle)
        np.add.at(layer, (np.rint(ys).astype(int), np.rint(xs).astype(int)), weight * rng.uniform(0.3, 0.8))
    return layer / layer.max()


def _bad_pixels(rng, p, i, size, centre):
    """A hot pixel, or a column or row segment passing within a pixel of the candidate."""
    layer = np.zeros((size, size))
    x0, y0 = np.rint(centre + p["candidate_pixels"][i]).astype(int)
    shape, length = p["bad_pixel_shape"][i], p["bad_pixel_length"][i]
    if shape == 0:
        layer[y0, x0] = 1.0
        return layer
    first = int(rng.integers(-length + 1, 1))  # the segment covers the candidate
    values = rng.uniform(0.85, 1.15, length)  # pixels of a bad column differ a little
    if shape == 1:
        rows = np.arange(y0 + first, y0 + first + length)
        keep = (rows >= 0) & (rows < size)
        layer[rows[keep], x0] = values[keep]
    else:
        cols = np.arange(x0 + first, x0 + first + length)
        keep = (cols >= 0) & (cols < size)
        layer[y0, cols[keep]] = values[keep]
    return layer


def _saturate(image, level):
    """Clip ``image`` (2-D, in place) at ``level`` and spill the excess charge up and down its columns."""
    over = image > level
    if not over.any():
        return
    size = image.shape[0]
    for col in np.flatnonzero(over.any(axis=0)):
        column = image[:, col]
        rows = np.flatnonzero(column > level)
        excess = float((column[rows] - level).sum())
        lo, hi = rows.min(), rows.max()
        column[lo : hi + 1] = np.maximum(column[lo : hi + 1], level)
        column[column > level] = level
        # charge bleeds along the readout direction, half each way, filling pixels to the well depth
        for step, start in ((-1, lo - 1), (1, hi + 1)):
            left, r = excess / 2, start
            while left > 0 and 0 <= r < size:
                room = max(level - column[r], 0.0)
                column[r] += min(room, left)
                left -= room
                r += step


def _draw_chunk(args):
    """Render one chunk of candidates (runs in a worker process)."""
    p, start, seed, survey = args
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, start]))
    m, size, c = len(p["kind"]), _GRID, _GRID // 2
    f32 = np.float32
    px = survey.pixel_scale_arcsec
    ky = (2 * np.pi * np.fft.fftfreq(size))[None, :, None].astype(f32)
    kx = (2 * np.pi * np.fft.rfftfreq(size))[None, None, :].astype(f32)
    k2 = kx**2 + ky**2
    pixel = np.sinc(kx / f32(2 * np.pi)) * np.sinc(ky / f32(2 * np.pi))
    col = lambda name: p[name].astype(f32)[:, None, None]  # noqa: E731

    # PSFs: the sharper image's is a Moffat; the blurrier one's is that Moffat times a Gaussian,
    # so that a perfectly measured Gaussian kernel would match them exactly
    fwhm_s = p["science_fwhm_arcsec"] / px
    fwhm_t = p["template_fwhm_arcsec"] / px
    sharp = np.minimum(fwhm_s, fwhm_t)
    moffat_x, moffat_y = _tables()["moffat"]
    arg = p["beta_index"][:, None, None] * _MOFFAT_STRIDE + np.minimum(
        np.sqrt(k2) * sharp.astype(f32)[:, None, None], _MOFFAT_X_MAX
    )
    psf_sharp = np.interp(arg, moffat_x, moffat_y).astype(f32) * pixel
    sigma_true2 = (np.maximum(fwhm_s, fwhm_t) ** 2 - sharp**2) / FWHM_PER_SIGMA**2
    psf_blur = psf_sharp * np.exp(f32(-0.5) * sigma_true2.astype(f32)[:, None, None] * k2)
    template_sharper = (fwhm_t <= fwhm_s)[:, None, None]
    psf_t = np.where(template_sharper, psf_sharp, psf_blur)
    psf_s = np.where(template_sharper, psf_blur, psf_sharp)

    # the pipeline's kernel, from its own measurements of the two FWHMs
    meas_s = fwhm_s * (1 + p["fwhm_error"][:, 0])
    meas_t = fwhm_t * (1 + p["fwhm_error"][:, 1])
    convolve_template = (meas_t <= meas_s)[:, None, None]
    sigma_k2 = np.abs(meas_s**2 - meas_t**2) / FWHM_PER_SIGMA**2
    kernel = np.exp(f32(-0.5) * sigma_k2.astype(f32)[:, None, None] * k2)
    kernel2 = _rfft(_irfft(kernel) ** 2)
    scale = col("flux_scale")

    def convolve_sharper(science_ft, template_ft, index=slice(None)):
        """The Fourier transforms of (science, template) after the sharper one is convolved."""
        conv, kern = convolve_template[index], kernel[index]
        return np.where(conv, science_ft, kern * science_ft), np.where(conv, kern * template_ft, template_ft)

    # scene (base fluxes) and feature (per unit amplitude), in Fourier space; each slot is
    # computed only for the stamps that use it
    base = np.zeros((m, size, size // 2 + 1), np.complex64)
    unit_t = np.zeros_like(base)
    has_galaxy = np.flatnonzero((p["galaxy_flux"] > 0) | (p["galaxy_coef"] > 0))
    if len(has_galaxy):
        sub = {k: v[has_galaxy] for k, v in p.items()}
        galaxy = _galaxy_ft(sub, kx, ky) * _phase(kx, ky, sub["galaxy_pixels"], c)
        base[has_galaxy] += col("galaxy_flux")[has_galaxy] * galaxy
        unit_t[has_galaxy] += col("galaxy_coef")[has_galaxy] * galaxy
    has_star = np.flatnonzero((p["star_flux"] > 0) | (p["star_coef"] > 0))
    if len(has_star):
        star = _phase(kx, ky, p["star_pixels"][has_star], c)
        base[has_star] += col("star_flux")[has_star] * star
        unit_t[has_star] += col("star_coef")[has_star] * star
    unit_s = unit_t.copy()
    has_transient = np.flatnonzero(p["transient_coef"] > 0)
    unit_s[has_transient] += _phase(kx, ky, p["candidate_pixels"][has_transient], c)
    science_psf = psf_s * _phase(kx, ky, p["misalignment_pixels"], 0.0)  # with the registration error
    scene_t, scene_s = psf_t * base, science_psf * base
    feature_t, feature_s = psf_t * unit_t, science_psf * unit_s
    t0, s0, ft, fs = (_irfft(a) for a in (scene_t, scene_s, feature_t, feature_s))
    del base, unit_t, unit_s
    # cosmic rays and bad pixels are not light: they are neither convolved with a PSF nor in the
    # pipeline's variance model, and have no photon noise
    art_t, art_s = np.zeros_like(t0), np.zeros_like(s0)
    artefacts = np.flatnonzero(p["artefact_image"] > 0)
    for i in artefacts:
        layer = (_cosmic_ray if p["kind"][i] == COSMIC_RAY else _bad_pixels)(rng, p, i, size, c)
        (art_t if p["artefact_image"][i] == 2 else art_s)[i] = layer
    if len(artefacts):
        feature_t[artefacts] += _rfft(art_t[artefacts])
        feature_s[artefacts] += _rfft(art_s[artefacts])

    # matched filter: the blurrier PSF, unit norm
    filt = _irfft(psf_blur)
    filt /= np.sqrt((filt**2).sum(axis=(1, 2)))[:, None, None]
    filt_ft, filt2_ft = _rfft(filt), _rfft(filt**2)
    gain_s, gain_t = f32(survey.science_electrons_per_nmgy), f32(survey.template_electrons_per_nmgy)
    sky_s, sky_t = col("science_noise_nmgy") ** 2, col("template_noise_nmgy") ** 2

    def difference_variance(var_s, var_t, index=slice(None)):
        """Per-pixel variance of the difference (the convolved image's is smoothed by the kernel squared)."""
        conv = convolve_template[index]
        smoothed = _irfft(kernel2[index] * _rfft(np.where(conv, var_t, var_s)))
        return np.where(conv, var_s + scale[index] ** 2 * smoothed, smoothed + scale[index] ** 2 * var_t)

    # amplitude of each targeted feature: the flux whose matched-filter S/N in the difference,
    # where the feature's noiseless response peaks, is the target
    matched_s, matched_t = convolve_sharper(feature_s, feature_t)
    diff_ft = matched_s - scale * matched_t
    del matched_s, matched_t
    response = _irfft(filt_ft * diff_ft)
    r = SEARCH_RADIUS_PIXELS
    window = (slice(None), slice(c - r, c + r + 1), slice(c - r, c + r + 1))
    at = np.abs(response[window]).reshape(m, -1).argmax(axis=1)
    peak = np.stack([at % (2 * r + 1) - r, at // (2 * r + 1) - r], axis=1).astype(float)
    targeted = np.flatnonzero(np.isfinite(p["target_snr"]))
    amplitude = np.zeros(m)
    if len(targeted):
        sub = targeted
        var0 = difference_variance(sky_s[sub] + np.maximum(s0[sub], 0) / gain_s,
                                   sky_t[sub] + np.maximum(t0[sub], 0) / gain_t, sub)
        var1 = difference_variance(np.maximum(fs[sub], 0) / gain_s, np.maximum(ft[sub], 0) / gain_t, sub)
        filt_at = _irfft(psf_blur[sub] * _phase(kx, ky, peak[sub], c))
        amplitude[sub] = _solve_amplitude(filt_at, _irfft(diff_ft[sub]), var0, var1, p["target_snr"][sub])
        # bright sources stay below saturation (saturated stars are a kind of their own)
        cap = np.minimum(
            survey.science_saturation_nmgy_per_pixel / fs.max(axis=(1, 2)).clip(1e-12),
            survey.template_saturation_nmgy_per_pixel / ft.max(axis=(1, 2)).clip(1e-12),
        )
        amplitude = np.minimum(amplitude, np.minimum(0.8 * cap, mag_to_nmgy(_BRIGHTEST_MAG)))
    a = amplitude.astype(f32)[:, None, None]
    model_t, model_s = t0 + a * ft, s0 + a * fs
    del t0, s0, ft, fs

    # observed images: sky + Poisson noise, then saturation
    var_t = sky_t + np.clip(model_t, 0, survey.template_saturation_nmgy_per_pixel) / gain_t
    var_s = sky_s + np.clip(model_s, 0, survey.science_saturation_nmgy_per_pixel) / gain_s
    noise_t = rng.standard_normal((m, size, size), dtype=f32) * np.sqrt(var_t)
    noise_s = rng.standard_normal((m, size, size), dtype=f32) * np.sqrt(var_s)
    var_d = difference_variance(var_s, var_t)  # the pipeline's noise map, from its models of both images
    peaks = np.flatnonzero(p["kind"] == NOISE)
    if len(peaks):
        matched_s, matched_t = convolve_sharper(_rfft(model_s[peaks]), _rfft(model_t[peaks]), peaks)
        model_diff = _irfft(matched_s - scale[peaks] * matched_t)
        filt_at = _irfft(psf_blur[peaks] * _phase(kx, ky, np.rint(p["candidate_pixels"][peaks]), c))
        ns, nt = noise_s[peaks], noise_t[peaks]
        _condition_on_peak(rng, filt_at, var_d[peaks], var_s[peaks], var_t[peaks], ns, nt, model_diff,
                           kernel[peaks], scale[peaks], convolve_template[peaks])
        noise_s[peaks], noise_t[peaks] = ns, nt
    template = model_t + a * art_t + noise_t
    science = model_s + a * art_s + noise_s
    del noise_t, noise_s, model_t, model_s
    for i in np.flatnonzero((science > survey.science_saturation_nmgy_per_pixel).any(axis=(1, 2))):
        _saturate(science[i], survey.science_saturation_nmgy_per_pixel)
    for i in np.flatnonzero((template > survey.template_saturation_nmgy_per_pixel).any(axis=(1, 2))):
        _saturate(template[i], survey.template_saturation_nmgy_per_pixel)

    # the subtraction
    matched_s, matched_t = convolve_sharper(_rfft(science), _rfft(template))
    difference = _irfft(matched_s - scale * matched_t)
    inverse = 1 / var_d
    detection = _irfft(filt_ft * _rfft(difference * inverse)) / np.sqrt(_irfft(filt2_ft * _rfft(inverse)))
    at = np.abs(detection[window]).reshape(m, -1).argmax(axis=1)
    snr = detection[window].reshape(m, -1)[np.arange(m), at]

    crop = slice(c - survey.stamp_pixels // 2, c + survey.stamp_pixels // 2 + 1)
    d = difference[:, crop, crop]
    snr_map = d / np.sqrt(var_d[:, crop, crop])
    out = np.stack([template[:, crop, crop], science[:, crop, crop], d, snr_map], axis=-1)
    flux = np.where(p["transient_coef"] > 0, amplitude, np.nan)
    return start, out.astype(np.float32), snr.astype(np.float32), flux


def _solve_amplitude(filt, unit_diff, var0, var1, target, iterations=6):
    """Amplitudes whose matched-filter S/N is ``target``, for features with their own Poisson noise.

    The S/N of amplitude ``A`` at the filter's position is ``A |sum(P d / V)| / sqrt(sum(P^2 / V))``
    with ``V = var0 + A var1``: linear in ``A`` on sky noise, like ``sqrt(A)`` where the source's
    own noise dominates. Newton's method in log A from the uniform-variance solution.

    Parameters
    ----------
    filt : (m, N, N) array
        The matched filter (PSF) centred on the feature's peak.
    unit_diff : (m, N, N) array
        The feature's noiseless difference image per unit amplitude.
    var0, var1 : (m, N, N) array
        Per-pixel variance of the difference without the feature, and per unit amplitude of it.
    target : (m,) array
        Wanted S/N.
    """
    axes = (1, 2)
    m0 = (filt**2).sum(axis=axes)
    response = np.abs((filt * unit_diff).sum(axis=axes)) / np.sqrt(m0)
    response = np.maximum(response, 1e-12)
    sigma2 = (filt**2 * var0).sum(axis=axes) / m0
    b = (filt**2 * var1).sum(axis=axes) / m0
    # (A r)^2 = t^2 (sigma^2 + A b) with the filter-averaged variance
    t2 = target**2
    amplitude = (t2 * b + np.sqrt(t2**2 * b**2 + 4 * response**2 * t2 * sigma2)) / (2 * response**2)
    if not var1.any():
        iterations = 0
    for _ in range(iterations):
        a = amplitude[:, None, None]
        inv = 1 / (var0 + a * var1)
        num = (filt * unit_diff * inv).sum(axis=axes)
        den = (filt**2 * inv).sum(axis=axes)
        snr = amplitude * np.abs(num) / np.sqrt(den)
        d_num = -(filt * unit_diff * var1 * inv**2).sum(axis=axes)
        d_den = -(filt**2 * var1 * inv**2).sum(axis=axes)
        slope = 1 + amplitude * d_num / np.where(num == 0, 1, num) - amplitude * d_den / (2 * den)
        step = (np.log(target) - np.log(np.maximum(snr, 1e-12))) / np.clip(slope, 0.3, 1.0)
        amplitude = amplitude * np.exp(np.clip(step, -3, 3))
    return amplitude


def _condition_on_peak(rng, filt, var_d, var_s, var_t, noise_s, noise_t, model_diff, kernel, scale,
                       convolve_template):
    """Make a noise peak a detection: condition the noise of both images on the S/N at ``at``.

    The noise of both images is Gaussian and the detection statistic ``Z`` is linear in it, so
    adding ``Cov(noise, Z) (z - Z) / Var(Z)`` gives an exact draw of the noise given ``Z = z``.
    ``z`` is drawn from the tail of ``Z``'s true distribution (wider than the pipeline assumes,
    since the kernel correlates the noise) above the threshold, less what the noiseless scene
    already contributes. Arrays are those of the stamps concerned; the noise is changed in place.
    """
    from scipy.special import ndtr, ndtri

    axes = (1, 2)
    weight = filt / var_d / np.sqrt((filt**2 / var_d).sum(axis=axes))[:, None, None]
    smoothed = _irfft(kernel * _rfft(weight))
    a_s = np.where(convolve_template, weight, smoothed)
    a_t = np.where(convolve_template, smoothed, weight)
    s = scale[:, 0, 0]
    z_scene = (weight * model_diff).sum(axis=axes)
    z_noise = (a_s * noise_s).sum(axis=axes) - s * (a_t * noise_t).sum(axis=axes)
    var_z = (var_s * a_s**2).sum(axis=axes) + s**2 * (var_t * a_t**2).sum(axis=axes)
    sd = np.sqrt(var_z)
    # clipped: a scene residual that makes a peak unlikely beyond 8 sigma gets a weaker peak instead
    threshold = np.clip((DETECTION_SNR - z_scene) / sd, -8.0, 8.0)
    z = -sd * ndtri(rng.random(len(sd)) * ndtr(-threshold))  # N(0, sd^2) above the threshold
    k = ((z - z_noise) / var_z)[:, None, None]
    noise_s += k * var_s * a_s
    noise_t -= k * scale * var_t * a_t


def make_real_bogus(
    n: int = 20000,
    seed: int = 0,
    real_fraction: float = 0.5,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Dataset:
    """Simulate ``n`` difference-imaging candidates, real transients and bogus; the same seed gives the same bytes.

    Parameters
    ----------
    n : int
        Number of candidates.
    seed : int
        Random seed.
    real_fraction : float
        Probability that a candidate is real (label 1), in [0, 1].
    workers : int, optional
        Processes to draw with (default: all cores); the result does not depend on it.
    progress : callable, optional
        Called with the number of stamps finished after each chunk.

    Returns
    -------
    Dataset
        ``inputs`` (n, 21, 21, 4) float32: template, science and difference in nanomaggies per
        pixel (0.27 arcsec pixels) and the dimensionless snr channel; ``labels`` 0 bogus, 1 real;
        ``objects``: ``kind`` (name) and ``kind_code`` (index into ``meta["kinds"]``), ``snr``
        (matched-filter S/N of the detection in the difference, its magnitude; ``snr_signed``
        with its sign), ``target_snr``, ``mag``
        (AB magnitude of the transient's flux change, NaN for bogus), ``on_galaxy``,
        ``galaxy_mag`` (NaN where there is no galaxy), ``science_fwhm_arcsec``,
        ``template_fwhm_arcsec``, ``misalignment_pixels`` (registration error, x and y),
        ``template_convolved``.

    Examples
    --------
    >>> data = make_real_bogus(n=8, seed=1, workers=1)
    >>> data.inputs.shape, data.meta["bands"]
    ((8, 21, 21, 4), ['template', 'science', 'difference', 'snr'])
    """
    if n < 1:
        raise DeepskyError(f"the number of candidates must be at least 1; received n={n}")
    if not 0 <= real_fraction <= 1:
        raise DeepskyError(f"real_fraction must lie in [0, 1]; received real_fraction={real_fraction}")
    survey = DECAM_HITS
    params = draw_parameters(n, seed, real_fraction, survey)
    size = survey.stamp_pixels
    images = np.empty((n, size, size, len(BANDS)), np.float32)
    snr = np.empty(n, np.float32)
    flux = np.empty(n)
    jobs = [({k: v[s : s + CHUNK] for k, v in params.items()}, s, seed, survey) for s in range(0, n, CHUNK)]
    for start, block, block_snr, block_flux in map_in_processes(_draw_chunk, jobs, workers):
        stop = start + len(block)
        images[start:stop], snr[start:stop], flux[start:stop] = block, block_snr, block_flux
        if progress:
            progress(len(block))
    with np.errstate(invalid="ignore"):
        mag = nmgy_to_mag(flux)
    measured_s = params["science_fwhm_arcsec"] * (1 + params["fwhm_error"][:, 0])
    measured_t = params["template_fwhm_arcsec"] * (1 + params["fwhm_error"][:, 1])
    objects = {
        "kind": np.asarray(KINDS)[params["kind"]],
        "kind_code": params["kind"],
        "snr": np.abs(snr),
        "snr_signed": snr,
        "target_snr": params["target_snr"].astype(np.float32),
        "mag": mag.astype(np.float32),
        "on_galaxy": params["on_galaxy"],
        "galaxy_mag": params["galaxy_mag"].astype(np.float32),
        "science_fwhm_arcsec": params["science_fwhm_arcsec"].astype(np.float32),
        "template_fwhm_arcsec": params["template_fwhm_arcsec"].astype(np.float32),
        "misalignment_pixels": params["misalignment_pixels"].astype(np.float32),
        "template_convolved": measured_t <= measured_s,
    }
    meta = {
        "task": "real-bogus",
        "classes": list(CLASSES),
        "kinds": list(KINDS),
        "bands": list(BANDS),
        "pixel_scale_arcsec": survey.pixel_scale_arcsec,
        "units": "nanomaggies per pixel (template, science, difference); snr channel dimensionless",
        "survey": survey.to_dict(),
        "seed": int(seed),
        "simulator": SIMULATOR_VERSION,
        "real_fraction": real_fraction,
        "snr": "matched-filter (PSF-weighted) S/N in the difference, largest magnitude within "
               f"{SEARCH_RADIUS_PIXELS} pixels of the centre (snr_signed: with its sign)",
        "psf": "Moffat (beta 2.5-4.5) in the sharper image, that Moffat convolved with a Gaussian in the "
               "blurrier; science FWHM 0.8-1.8 arcsec, template 0.6-1.1 times it (at least 0.7 arcsec); "
               "the sharper image is convolved with a Gaussian kernel from the measured FWHMs (2% errors)",
        "noise": "Gaussian sky (science 0.0057, template 0.0029 nanomaggies per pixel, times 0.8-1.3) "
                 "plus source Poisson noise; the snr channel divides by the pipeline's per-pixel noise",
    }
    return Dataset(inputs=images, labels=params["label"], objects=objects, meta=meta)
