"""Extended radio galaxies as the VLA FIRST survey sees them at 1.4 GHz: FRI, FRII and bent tails.

Every source is a compact core at the host galaxy (within 3 pixels of the cutout centre) and two
jets or lobes along curved paths, drawn as sums of circular Gaussians along each path, convolved
with FIRST's restoring beam and put on FIRST's noise. Largest angular sizes are log-normal around
70 arcsec for FRIs, 60 for bent sources and 40 for FRIIs (20-200 arcsec, at most three quarters
of the cutout), peak signal-to-noise ratios log-normal around 100 (10-1000) for all classes, as
measured in MiraBest's FIRST images. The classes differ mainly in where the light is:

FRI (edge-darkened; Fanaroff & Riley 1974, class I)
    Jets brightest next to the core and fading outwards (brightness per unit length falls as
    exp(-s / 0.3-1 arm lengths); knots and clumps move light within each half of an arm but not
    between them, so the inner half is always at least 1.6 times brighter than the outer half),
    widening into lumpy plumes (half opening angle 4-14 deg); a prominent core (2-30 % of the
    flux); jet to counter-jet flux ratio up to 4 either way.
FRII (edge-brightened; class II)
    Compact hotspots (10-50 % of a lobe's flux, 20 % of them double) at the ends of both arms,
    inside lumpy lobes that fill the outer 30-70 % of each arm and brighten towards the hotspot; a faint
    core (0.1-5 %); faint narrow jets, on one side in half of the sources, on both sides in a fifth,
    invisible otherwise; arm-length ratios up to 1.5 and lobe flux ratios up to 2.
bent (head-tail, wide- and narrow-angle tails)
    FRI-like jets swept to one side by ram pressure: each arm turns as s^q along its length
    (q = 0.4-2: sharply near the host or gradually far out), and the directions from the core to
    the two arm ends differ from opposite by the bending angle (30-170 deg, a C, V or U shape).
    Beyond 120 deg the jets widen faster and merge into one tail (a narrow-angle tail).

All classes get random position angles, arm-length ratios (projection), wiggles of 2-10 deg
along the jets and a mild curvature (an S or a C of up to 25 deg), so that neither orientation
nor straightness alone gives the class away.

The sky model is built in flux per pixel on the cutout grid (padded against the periodic
convolution), split by Gaussian width into a few layers and convolved with the beam in Fourier
space. The noise is white noise convolved with a Gaussian whose autocorrelation is about the
beam (the noise of an interferometric image is correlated like its beam; measured FIRST cutouts
have a pixel-to-pixel correlation of 0.6-0.9 at 1.8 arcsec, so the width varies by -15 to +35 %
from cutout to cutout), rescaled to an rms of 0.12-0.20 mJy/beam, plus faint unrelated sources
(about 15 per 270 x 270 arcsec on average, varying from field to field, 1-200 sigma, N(>S)
proportional to S^-1.5: together they give the ~20 noise islands above 3 sigma and the positive
skew of real FIRST backgrounds) and, in a third of the cutouts, faint stripes (0.3-0.8 sigma)
like the sidelobes of bright sources outside the field. Images are in Jy/beam, as in FIRST's
FITS cutouts, and are not normalised: the paper's preprocessing (sigma-clipping, 3 sigma
threshold) is the task's.

References
----------
Fanaroff B. L., Riley J. M., 1974, MNRAS 167, 31P.
Becker R. H., White R. L., Helfand D. J., 1995, ApJ 450, 559 (the FIRST survey).
Aniyan A. K., Thorat K., 2017, ApJS 230, 20 (classifying FRI, FRII and bent-tailed sources).
Miraghaei H., Best P. N., 2017, MNRAS 466, 4346 (the sample behind MiraBest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from deepsky.data.store import Dataset
from deepsky.errors import DeepskyError
from deepsky.parallel import map_in_processes

SIMULATOR_VERSION = "radio-1"
RADIO_CLASSES = ("FRI", "FRII", "bent")
CHUNK = 100  # images per worker task; each chunk has its own seed, so results do not depend on workers
MIN_SIZE = 32  # pixels: smaller cutouts cannot hold a 20 arcsec source with its beam
SAMPLES_PER_ARM = 120  # Gaussians along an arm: spacing below the beam's sigma for arms up to ~150 px
# Widths (pixels) of the layers the sky model is split into; a component between two layers is
# shared between them so that the mixture has its variance (smooth widening without a layer per width).
LAYER_SIGMA_PIXELS = np.array([0.0, 0.8, 1.6, 2.7, 4.2, 6.2, 9.0])
FAINT_SOURCES_PER_FIELD = 15.0  # unrelated sources above 1 sigma per 150 x 150 pixels (see the module docstring)


@dataclass(frozen=True)
class RadioSurvey:
    """A radio continuum survey's imaging: pixels, restoring beam and noise.

    Attributes
    ----------
    name : str
        Survey name.
    frequency_ghz : float
        Observing frequency in GHz.
    pixel_scale_arcsec : float
        Pixel size in arcsec.
    beam_fwhm_arcsec : float
        FWHM of the circular Gaussian restoring beam in arcsec.
    rms_mjy_per_beam : float
        Typical noise rms in mJy/beam.
    rms_range_mjy_per_beam : (float, float)
        Range the noise rms of a cutout is drawn from, in mJy/beam.
    """

    name: str = "FIRST"
    frequency_ghz: float = 1.4
    pixel_scale_arcsec: float = 1.8
    beam_fwhm_arcsec: float = 5.4
    rms_mjy_per_beam: float = 0.15
    rms_range_mjy_per_beam: tuple = (0.12, 0.20)

    @property
    def beam_sigma_pixels(self) -> float:
        """The beam's Gaussian sigma in pixels."""
        return self.beam_fwhm_arcsec / (2 * np.sqrt(2 * np.log(2))) / self.pixel_scale_arcsec

    @property
    def beam_area_pixels(self) -> float:
        """The beam's solid angle in pixels (2 pi sigma^2): Jy/beam divided by this is Jy/pixel."""
        return 2 * np.pi * self.beam_sigma_pixels**2


FIRST = RadioSurvey()


def _check_classes(classes) -> tuple:
    if isinstance(classes, str):
        classes = (classes,)
    classes = tuple(classes)
    unknown = [c for c in classes if c not in RADIO_CLASSES]
    if unknown:
        raise DeepskyError(f"unknown radio galaxy class {unknown[0]!r}; known classes: {', '.join(RADIO_CLASSES)}")
    if not classes:
        raise DeepskyError(f"give at least one class of {', '.join(RADIO_CLASSES)}; received classes=()")
    if len(set(classes)) != len(classes):
        raise DeepskyError(f"classes must be distinct; received classes={classes}")
    return classes


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def draw_parameters(n: int, seed: int, classes=RADIO_CLASSES, size: int = 150, survey: RadioSurvey = FIRST):
    """Draw the parameters of ``n`` radio galaxies; returns a dict of (n, ...) arrays.

    Classes come in equal shares (the remainder to the first classes), shuffled. Sizes are in
    arcsec, angles in degrees, the noise rms in Jy/beam, offsets in pixels.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    label = rng.permutation(np.arange(n) % len(classes))
    morph = np.array([RADIO_CLASSES.index(c) for c in classes])[label]
    fri, frii, bent = morph == 0, morph == 1, morph == 2
    max_size = min(200.0, 0.75 * size * survey.pixel_scale_arcsec)
    # MiraBest's FRIIs are smaller than its FRIs (median largest sizes ~45 and ~70 arcsec measured
    # above 3 sigma in its images, beam included); bent sources look smaller for their path length
    size_arcsec = np.clip(np.select([fri, frii], [70.0, 40.0], 60.0) * np.exp(rng.normal(0, 0.55, n)), 20.0, max_size)
    bend = np.where(bent, rng.uniform(30, 170, n), 0.0)
    # Bent jets turn as s^q along the arm (s from 0 at the core to 1): q < 1 bends close to the host
    # (narrow-angle tails), q > 1 far out (wide-angle tails). A turn of bend/2 * (1 + q) launches the
    # jets about opposite each other; capped at 100 deg, beyond which arms would curl into rings.
    bend_power = rng.uniform(0.4, 2.0, n)
    bent_turn = np.minimum(bend[:, None] / 2 * (1 + bend_power[:, None]) * rng.uniform(0.8, 1.1, (n, 2)), 100.0)
    bent_turn = bent_turn * np.array([-1.0, 1.0])
    # straight sources curve by up to 25 deg per arm, either way (S or C shapes)
    straight_turn = np.clip(rng.normal(0, 10, (n, 2)), -25, 25)
    lo, hi = survey.rms_range_mjy_per_beam
    jets = rng.choice(3, n, p=[0.3, 0.5, 0.2])  # FRII jets: none, one-sided, both
    return {
        "label": label.astype(np.int64),
        "morphology": morph.astype(np.int8),
        "rms_jy_per_beam": (rng.uniform(lo, hi, n) * 1e-3).astype(np.float64),
        # noise correlation length over the beam's: FIRST cutouts range from 0.6 to 0.9 in
        # pixel-to-pixel correlation (CLEAN depth and mosaicking differ across the sky)
        "noise_correlation": rng.uniform(0.85, 1.35, n),
        "host_offset_pixels": rng.uniform(-3, 3, (n, 2)),
        "position_angle_deg": rng.uniform(0, 360, n),
        "size_arcsec": size_arcsec,
        "size_pixels": size_arcsec / survey.pixel_scale_arcsec,
        # longer arm / shorter arm: projection and environment; FRIIs up to 1.5
        "arm_length_ratio": 1 + np.where(frii, 0.5, 0.35) * rng.random(n) ** 1.5,
        "bend_angle_deg": bend,
        "turn_deg": np.where(bent[:, None], bent_turn, straight_turn),
        "bend_power": np.where(bent, bend_power, 1.0),
        "wiggle_deg": rng.uniform(2, 10, (n, 2)),
        "wiggle_wavelength": rng.uniform(0.25, 1.0, (n, 2)),  # in arm lengths
        "wiggle_phase": rng.uniform(0, 2 * np.pi, (n, 2)),
        "peak_snr": np.clip(100 * np.exp(rng.normal(0, 0.9, n)), 10, 1000),
        "core_fraction": np.where(frii, _log_uniform(rng, 1e-3, 0.05, n), _log_uniform(rng, 0.02, 0.3, n)),
        # FRI and bent jets
        "jet_ratio": _log_uniform(rng, 0.25, 4.0, n),  # flux of arm 1 over arm 2 (Doppler boosting)
        "fade_length": rng.uniform(0.3, 1.0, n),  # e-folding of the jet brightness, in arm lengths
        "clump_fraction": rng.uniform(0.15, 0.4, n),  # of an arm's flux in irregular clumps
        "opening_deg": np.where(bent & (bend > 120), rng.uniform(8, 14, n), rng.uniform(4, 14, n)),
        # FRII lobes
        "jets_visible": np.where(frii, jets, 0).astype(np.int8),
        "jet_fraction": rng.uniform(0.01, 0.05, n),
        "jet_side": rng.integers(0, 2, n).astype(np.int8),
        "lobe_length": rng.uniform(0.3, 0.7, n),  # in arm lengths
        "lobe_width": rng.uniform(0.08, 0.22, n),  # Gaussian sigma, in arm lengths
        "lobe_power": rng.uniform(0.5, 2.5, n),  # lobe brightness rises as (distance into the lobe)^power
        "hotspot_fraction": rng.uniform(0.1, 0.5, (n, 2)),
        "hotspot_sigma_pixels": rng.uniform(0.0, 0.8, (n, 2)),
        "double_hotspot": rng.random((n, 2)) < 0.2,
        "lobe_ratio": _log_uniform(rng, 0.5, 2.0, n),  # flux of lobe 1 over lobe 2
    }


def _arm_shapes(p, i):
    """Centre lines of the two arms of source ``i``, in pixels from the host, as complex x + iy.

    Returns (2, SAMPLES_PER_ARM) complex positions with the core at index 0 of each arm, and the
    (2,) arm lengths along the path in pixels. x is the column, y the row; position angles run from
    north (+y) through east (-x), as on the sky with FITS row order.
    """
    s = np.linspace(0.0, 1.0, SAMPLES_PER_ARM)
    ratio = p["arm_length_ratio"][i]
    lengths = np.array([ratio, 1.0]) / (1 + ratio)
    bent = p["morphology"][i] == 2
    turns = np.radians(p["turn_deg"][i])
    wig = np.radians(p["wiggle_deg"][i])
    profile = s ** p["bend_power"][i]
    phase = 2 * np.pi * s[None, :] / p["wiggle_wavelength"][i][:, None] + p["wiggle_phase"][i][:, None]
    theta = turns[:, None] * profile[None, :] + wig[:, None] * (np.sin(phase) - np.sin(phase[:, :1]))
    steps = np.exp(1j * theta) * (lengths / (SAMPLES_PER_ARM - 1))[:, None]
    z = np.concatenate([np.zeros((2, 1), complex), np.cumsum(steps[:, 1:], axis=1)], axis=1)
    # Turn each arm rigidly so that the core-to-end directions are exactly the drawn ones:
    # opposite for straight sources, 180 - bend apart around the tail for bent ones.
    axis = np.radians(90.0 + p["position_angle_deg"][i])
    half_opening = np.radians(180.0 - p["bend_angle_deg"][i]) / 2
    ends = np.array([axis + half_opening, axis - half_opening]) if bent else np.array([axis, axis + np.pi])
    z *= np.exp(1j * (ends - np.angle(z[:, -1])))[:, None]
    # scale so that the largest distance between two points of the paths is the drawn size
    points = z.ravel()
    extent = np.abs(points[:, None] - points[None, :]).max()
    z *= p["size_pixels"][i] / extent
    return z, np.abs(np.diff(z, axis=1)).sum(axis=1)


def arm_paths(params, i):
    """The arms' centre lines of source ``i`` (of ``draw_parameters``' output) in pixels.

    Returns (2, SAMPLES_PER_ARM) complex positions (column + 1j * row) relative to the host,
    each arm starting at the core, and the (2,) arm lengths along the paths in pixels.
    """
    return _arm_shapes(params, i)


def _smooth_knots(rng, shape, amplitude, width=4):
    """Multiplicative brightness modulation along arms: smoothed log-normal knots."""
    kernel = np.hanning(2 * width + 1)
    kernel /= np.sqrt((kernel**2).sum())
    noise = rng.standard_normal((shape[0], shape[1] + 2 * width))
    smooth = np.stack([np.convolve(row, kernel, mode="valid") for row in noise])
    return np.exp(amplitude * smooth - amplitude**2 / 2)


def _add_clumps(rng, path, width, total, where, count, pos, sig, flux):
    """Append ``count`` irregular clumps along an arm's path, placed with probability ``where``.

    Real plumes and lobes are lumpy; clumps scattered about the centre line, as wide as the local
    width, keep the flux distribution from looking like one smooth ellipse. ``where`` (one weight
    per path sample) follows the arm's smooth brightness, so that clumps keep FRIs edge-darkened
    and FRIIs edge-brightened.
    """
    j = rng.choice(len(path), count, p=where / where.sum())
    step = path[np.minimum(j + 1, len(path) - 1)] - path[np.maximum(j - 1, 0)]
    normal = 1j * step / (np.abs(step) + 1e-9)
    w = np.broadcast_to(width, path.shape)[j]
    pos.append(path[j] + normal * rng.normal(0, 0.7, count) * w)
    sig.append(w * rng.uniform(0.4, 1.0, count))
    share = rng.random(count) + 0.2
    flux.append(total * share / share.sum())


def _components(p, i, rng):
    """Gaussian components of source ``i``: positions (complex, pixels from host), sigmas (pixels), fluxes.

    Fluxes sum to 1; the caller scales them to the drawn peak signal-to-noise ratio.
    """
    z, length = _arm_shapes(p, i)
    s = np.linspace(0.0, 1.0, SAMPLES_PER_ARM)[None, :]
    core = p["core_fraction"][i]
    morph = p["morphology"][i]
    pos, sig, flux = [np.zeros(1, complex)], [np.zeros(1)], [np.array([core])]
    if morph != 1:  # FRI and bent: edge-darkened jets widening into plumes
        smooth = np.exp(-s[0] / p["fade_length"][i])
        smooth[0] = 0  # the core is its own component
        inner = s[0] < 0.5
        share_inner = smooth[inner].sum() / smooth.sum()  # above 0.62 for fade lengths up to 1
        bright = smooth * _smooth_knots(rng, z.shape, 0.6)
        # knots move light along the jet but not between its halves: FRIs stay edge-darkened
        for half, share in ((inner, share_inner), (~inner, 1 - share_inner)):
            bright[:, half] *= share / bright[:, half].sum(axis=1, keepdims=True)
        jr = p["jet_ratio"][i]
        arm_flux = (1 - core) * np.array([jr, 1.0]) / (1 + jr)
        width = 0.3 + s * length[:, None] * np.tan(np.radians(p["opening_deg"][i]))
        clumps = p["clump_fraction"][i]
        pos.append(z.ravel())
        sig.append(np.broadcast_to(width, z.shape).ravel())
        flux.append((bright * (arm_flux * (1 - clumps))[:, None]).ravel())
        count = rng.integers(3, 9)
        n_inner = max(1, int(round(count * share_inner)))
        for a in range(2):
            for half, share, m in ((inner, share_inner, n_inner), (~inner, 1 - share_inner, max(1, count - n_inner))):
                where = smooth * half * (s[0] > 0.15)
                _add_clumps(rng, z[a], width[a], arm_flux[a] * clumps * share, where, m, pos, sig, flux)
    else:  # FRII: hotspots at the ends of lobes that brighten outwards, faint narrow jets
        jets = p["jets_visible"][i]
        side = p["jet_side"][i]
        jet_on = np.array([jets == 2 or (jets == 1 and side == 0), jets == 2 or (jets == 1 and side == 1)])
        jet_flux = p["jet_fraction"][i] * jet_on / max(jet_on.sum(), 1)
        lobes = 1 - core - jet_flux.sum()
        lr = p["lobe_ratio"][i]
        lobe_flux = lobes * np.array([lr, 1.0]) / (1 + lr)
        start = 1 - p["lobe_length"][i]
        inside = s >= start
        t = np.clip((s - start) / p["lobe_length"][i], 0, 1)
        # lobes fatter towards the hotspot, where the jet's energy arrives
        lobe_sig = np.clip(p["lobe_width"][i] * length[:, None] * (0.6 + 0.4 * t), 1.0, LAYER_SIGMA_PIXELS[-1])
        smooth = np.where(inside, t ** p["lobe_power"][i] + 0.15, 0)
        lobe_b = smooth * _smooth_knots(rng, z.shape, 0.2)
        lobe_b /= lobe_b.sum(axis=1, keepdims=True)
        hot = p["hotspot_fraction"][i]
        clumps = p["clump_fraction"][i] / 2
        pos.append(z.ravel())
        sig.append(lobe_sig.ravel())
        flux.append((lobe_b * (lobe_flux * (1 - hot - clumps))[:, None]).ravel())
        for a in range(2):
            _add_clumps(rng, z[a], lobe_sig[a], lobe_flux[a] * clumps, smooth[0], rng.integers(2, 6), pos, sig, flux)
        jet_b = np.where((s > 0.05) & (s < np.maximum(start, 0.5) + 0.1), 1.0, 0.0) * _smooth_knots(rng, z.shape, 0.4)
        jet_b /= jet_b.sum(axis=1, keepdims=True)
        pos.append(z.ravel())
        sig.append(np.full(z.size, 0.4))
        flux.append((jet_b * jet_flux[:, None]).ravel())
        for a in range(2):
            # the hotspot sits just inside the lobe's leading edge
            tip = z[a, -2]
            hs_flux = lobe_flux[a] * hot[a]
            if p["double_hotspot"][i, a]:
                direction = (z[a, -1] - z[a, -12]) / (abs(z[a, -1] - z[a, -12]) + 1e-9)
                second = z[a, int(0.93 * SAMPLES_PER_ARM)] + 1j * direction * rng.uniform(1, 3) * rng.choice([-1, 1])
                pos.append(np.array([tip, second]))
                sig.append(np.full(2, p["hotspot_sigma_pixels"][i, a]))
                flux.append(hs_flux * np.array([0.6, 0.4]))
            else:
                pos.append(np.array([tip]))
                sig.append(np.array([p["hotspot_sigma_pixels"][i, a]]))
                flux.append(np.array([hs_flux]))
    return np.concatenate(pos), np.concatenate(sig), np.concatenate(flux)


def _deposit(grid_shape, x, y, layer, weight):
    """Cloud-in-cell deposit of weights at (x, y) pixel positions into (layers, P, P); outside points drop."""
    layers, P, _ = grid_shape
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = x - x0, y - y0
    idx, w = [], []
    for dx, dy, wt in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
        xi, yi = x0 + dx, y0 + dy
        ok = (xi >= 0) & (xi < P) & (yi >= 0) & (yi < P)
        idx.append((layer * P + yi)[ok] * P + xi[ok])
        w.append((weight * wt)[ok])
    return np.bincount(np.concatenate(idx), np.concatenate(w), minlength=layers * P * P).reshape(grid_shape)


def _split_layers(sigma, flux):
    """Share each component between the two layers around its width, keeping its variance."""
    var_grid = LAYER_SIGMA_PIXELS**2
    var = np.clip(sigma, 0, LAYER_SIGMA_PIXELS[-1]) ** 2
    k = np.clip(np.searchsorted(var_grid, var, side="right") - 1, 0, len(var_grid) - 2)
    frac = (var - var_grid[k]) / (var_grid[k + 1] - var_grid[k])
    return k, k + 1, flux * (1 - frac), flux * frac


def _stripes(rng, size):
    """Faint stripes like the sidelobes of a bright source outside the field, in units of the noise rms."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.zeros((size, size))
    for _ in range(rng.integers(1, 3)):
        angle = rng.uniform(0, np.pi)
        wavelength = rng.uniform(4, 15)  # pixels
        k = 2 * np.pi / wavelength
        wave = np.cos(k * (xx * np.cos(angle) + yy * np.sin(angle)) + rng.uniform(0, 2 * np.pi))
        # the sidelobes fade away from their (distant) source
        cx, cy = rng.uniform(-size, 2 * size, 2)
        envelope = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * (rng.uniform(0.5, 1.5) * size) ** 2))
        out += rng.uniform(0.3, 0.8) * envelope * wave
    return out


def _render_chunk(args):
    """Render one chunk of images in Jy/beam (runs in a worker process)."""
    import scipy.fft as sfft

    params, start, seed, size, survey = args
    n = len(params["label"])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1, start]))
    pad = sfft.next_fast_len(size + 40, real=True)
    lo = (pad - size) // 2
    fy = sfft.fftfreq(pad)[:, None]
    fx = sfft.rfftfreq(pad)[None, :]
    f2 = fx**2 + fy**2
    sb = survey.beam_sigma_pixels
    # sky (Jy/pixel) convolved with a beam of peak 1 is Jy/beam: the kernel sums to the beam area
    transfer = survey.beam_area_pixels * np.exp(-2 * np.pi**2 * (sb**2 + LAYER_SIGMA_PIXELS[:, None, None] ** 2) * f2)
    transfer = transfer.astype(np.complex64)  # single precision: twice as fast, far below the noise
    shape = (len(LAYER_SIGMA_PIXELS), pad, pad)
    images = np.empty((n, size, size, 1), np.float32)
    peak_snr = np.empty(n)
    flux_mjy = np.empty(n)
    centre = lo + (size - 1) / 2
    n_faint = FAINT_SOURCES_PER_FIELD * (pad / 150) ** 2
    for i in range(n):
        z, sigma, flux = _components(params, i, rng)
        z = z + complex(*params["host_offset_pixels"][i])
        ka, kb, wa, wb = _split_layers(sigma, flux)
        x = np.concatenate([z.real, z.real]) + centre
        y = np.concatenate([z.imag, z.imag]) + centre
        k_all, w_all = np.concatenate([ka, kb]), np.concatenate([wa, wb])
        used = np.unique(k_all[w_all > 0])  # most sources fill few widths: transform only those
        stack = np.empty((len(used) + 2, pad, pad), np.float32)
        stack[:len(used)] = _deposit(shape, x, y, k_all, w_all)[used]
        # faint unrelated sources: N(>S) ~ S^-1.5 from 1 sigma, in units of the rms; their number
        # varies from field to field, as sidelobes and CLEAN residuals come and go with bright neighbours
        k = rng.poisson(n_faint * np.exp(rng.normal(0, 0.6) - 0.18))
        stack[-2] = _deposit((1, pad, pad), rng.uniform(0, pad - 1, k), rng.uniform(0, pad - 1, k),
                             np.zeros(k, np.int64), np.minimum(rng.random(k) ** (-1 / 1.5), 200.0))[0]
        stack[-1] = rng.standard_normal((pad, pad), dtype=np.float32)
        spec = sfft.rfft2(stack, workers=1)
        model_spec = (spec[:len(used)] * transfer[used]).sum(axis=0)
        # noise correlated like the beam: white noise through the Gaussian whose autocorrelation is
        # the beam (sigma / sqrt 2), scaled to unit rms
        sn = sb / np.sqrt(2) * params["noise_correlation"][i]
        noise_transfer = (2 * np.sqrt(np.pi) * sn * np.exp(-2 * np.pi**2 * sn**2 * f2)).astype(np.float32)
        noise_spec = spec[-2] * transfer[0] + spec[-1] * noise_transfer
        both = sfft.irfft2(np.stack([model_spec, noise_spec]), s=(pad, pad), workers=1)
        model, noise = both[:, lo:lo + size, lo:lo + size]
        if rng.random() < 1 / 3:
            noise = noise + _stripes(rng, size)
        rms = params["rms_jy_per_beam"][i]
        scale = params["peak_snr"][i] * rms / float(model.max())
        images[i, :, :, 0] = scale * model + rms * noise
        peak_snr[i] = params["peak_snr"][i]
        flux_mjy[i] = scale * flux.sum() * 1e3
    return start, images, peak_snr, flux_mjy


def make_radio_galaxies(
    n: int = 3000,
    seed: int = 0,
    classes: Sequence[str] = RADIO_CLASSES,
    size: int = 150,
    workers: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> Dataset:
    """Simulate ``n`` FIRST 1.4 GHz cutouts of FRI, FRII and bent-tailed radio galaxies.

    The same seed gives the same bytes whatever the number of workers.

    Parameters
    ----------
    n : int
        Number of images (at least 1); the classes get equal shares, shuffled.
    seed : int
        Random seed.
    classes : sequence of str
        Classes to simulate, any of ``"FRI"``, ``"FRII"``, ``"bent"``; labels index this order.
    size : int
        Cutout side in pixels of 1.8 arcsec (at least 32; 150 as in MiraBest).
    workers : int, optional
        Processes to render with (default: all cores).
    progress : callable, optional
        Called with the number of images finished after each chunk.

    Returns
    -------
    Dataset
        ``inputs`` (n, size, size, 1) float32 in Jy/beam; ``labels`` int64 indices into
        ``classes``; ``objects``: ``size_arcsec`` (largest angular size of the jets' paths,
        before the beam), ``position_angle_deg`` (east of north, of the longer arm or, for bent
        sources, of the tail), ``peak_snr`` (peak of the noiseless image over the rms),
        ``bend_angle_deg`` (180 deg minus the angle between the core-to-end directions of the
        arms; 0 for FRI and FRII), ``flux_mjy`` (total flux density in mJy), ``rms_mjy_per_beam``,
        ``arm_length_ratio`` and ``host_offset_pixels`` (column, row from the cutout centre).

    Examples
    --------
    >>> data = make_radio_galaxies(n=6, size=64, workers=1)
    >>> data.inputs.shape, data.meta["units"]
    ((6, 64, 64, 1), 'Jy/beam')
    """
    classes = _check_classes(classes)
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise DeepskyError(f"the number of images must be an integer of at least 1; received n={n!r}")
    if not isinstance(size, (int, np.integer)) or size < MIN_SIZE:
        raise DeepskyError(f"the cutout size must be an integer of at least {MIN_SIZE} pixels; received size={size!r}")
    survey = FIRST
    params = draw_parameters(int(n), seed, classes, int(size), survey)
    images = np.empty((n, size, size, 1), np.float32)
    peak_snr = np.empty(n)
    flux_mjy = np.empty(n)
    jobs = [({k: v[s:s + CHUNK] for k, v in params.items()}, s, seed, int(size), survey) for s in range(0, n, CHUNK)]
    for start, block, snr, flux in map_in_processes(_render_chunk, jobs, workers):
        images[start:start + len(block)] = block
        peak_snr[start:start + len(block)] = snr
        flux_mjy[start:start + len(block)] = flux
        if progress:
            progress(len(block))
    objects = {
        "size_arcsec": params["size_arcsec"].astype(np.float32),
        "position_angle_deg": params["position_angle_deg"].astype(np.float32),
        "peak_snr": peak_snr.astype(np.float32),
        "bend_angle_deg": params["bend_angle_deg"].astype(np.float32),
        "flux_mjy": flux_mjy.astype(np.float32),
        "rms_mjy_per_beam": (params["rms_jy_per_beam"] * 1e3).astype(np.float32),
        "arm_length_ratio": params["arm_length_ratio"].astype(np.float32),
        "host_offset_pixels": params["host_offset_pixels"].astype(np.float32),
    }
    meta = {
        "classes": list(classes),
        "bands": ["1.4GHz"],
        "pixel_scale_arcsec": survey.pixel_scale_arcsec,
        "units": "Jy/beam",
        "survey": "FIRST",
        "seed": int(seed),
        "simulator": SIMULATOR_VERSION,
        "beam": f"circular Gaussian restoring beam, FWHM {survey.beam_fwhm_arcsec} arcsec",
        "noise": (f"Gaussian, rms {survey.rms_range_mjy_per_beam[0]}-{survey.rms_range_mjy_per_beam[1]} mJy/beam, "
                  "correlated like the beam; faint unrelated sources; faint sidelobe stripes in a third of the images"),
    }
    return Dataset(inputs=images, labels=params["label"], objects=objects, meta=meta)
