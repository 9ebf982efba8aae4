"""The gravitational-wave simulator: IMRPhenomD mergers in whitened H1/L1 design-sensitivity noise."""

import numpy as np
import pytest

pytest.importorskip("lalsimulation", reason="lalsuite is in the sim extras (pip install -e '.[sim]')")

from deepsky.simulate import gravitational_waves as gw  # noqa: E402


@pytest.fixture(scope="module")
def detectors():
    return gw.Detectors()


def test_whitened_noise_is_white_with_unit_variance(detectors):
    rng = np.random.default_rng(0)
    noise = np.stack([gw.noise_example(detectors, rng) for _ in range(16)])
    assert noise.shape == (16, 4096, 2) and noise.std() == pytest.approx(1.0, abs=0.03)
    power = np.abs(np.fft.rfft(noise, axis=1)) ** 2
    frequencies = np.fft.rfftfreq(4096, 1 / 4096)
    bands = [(20, 60), (60, 200), (200, 800), (800, 2000)]
    levels = [power[:, (frequencies > lo) & (frequencies < hi)].mean() for lo, hi in bands]
    np.testing.assert_allclose(levels, np.mean(levels), rtol=0.1)  # flat: whitening undid the colour


def test_the_snr_is_set_exactly_and_a_matched_filter_recovers_it(detectors):
    found = []
    for seed in range(12):
        window, parameters = gw.merger_example(detectors, np.random.default_rng(seed), 36.0, 29.0, 12.0)
        template, same = gw.merger_example(detectors, np.random.default_rng(seed), 36.0, 29.0, 12.0, noise=False)
        assert same == parameters and 0.2 <= parameters["merger_s"] <= 0.9
        # whitened, the noiseless signal's energy is the optimal SNR squared (the window's taper costs a little)
        assert np.sqrt((template.astype(np.float64) ** 2).sum()) == pytest.approx(12.0, rel=0.03)
        found.append((window * template).sum() / np.sqrt((template.astype(np.float64) ** 2).sum()))
    # the matched filter's output: the SNR plus unit-variance noise
    assert np.mean(found) == pytest.approx(12.0, abs=1.0) and 0.4 < np.std(found) < 1.8


def test_the_two_detectors_see_the_merger_at_most_10_ms_apart(detectors):
    for ra, dec in [(0.3, 0.2), (2.0, -1.0), (4.5, 0.9)]:
        delays = [delay for _, _, delay in detectors.response(ra, dec, 0.4)]
        assert abs(delays[0] - delays[1]) <= 0.0101


def test_masses_follow_the_papers_ranges():
    rng = np.random.default_rng(2)
    masses = np.array([gw.draw_masses(rng) for _ in range(500)])
    assert masses.min() >= 5 and masses.max() <= 75
    assert (masses[:, 0] >= masses[:, 1]).all() and (masses[:, 0] / masses[:, 1]).max() <= 10


def test_the_merger_is_the_waveforms_amplitude_peak():
    hp, hc, peak = gw.polarisations(20.0, 10.0)
    amplitude = np.hypot(hp, hc)
    assert peak == np.argmax(amplitude) and amplitude[: peak // 2].max() < 0.5 * amplitude[peak]


def test_the_same_seed_gives_the_same_bytes_whatever_the_workers():
    one = gw.make_gravitational_waves(12, seed=4, workers=1)
    assert one.inputs.shape == (12, 4096, 2) and set(np.unique(one.labels)) <= {0, 1}
    assert np.isnan(one.objects["m1"][one.labels == 0]).all()
    assert np.isfinite(one.objects["snr"][one.labels == 1]).all()
    again = gw.make_gravitational_waves(12, seed=4, workers=2)
    np.testing.assert_array_equal(one.inputs, again.inputs)


def test_the_template_bank_matched_filter_finds_loud_mergers_and_their_masses(detectors):
    from deepsky.fitting.matched_filter import TemplateBank, default_bank

    bank = TemplateBank(default_bank(6), detectors)
    assert len(bank.masses) >= 15 and (bank.masses[:, 0] >= bank.masses[:, 1]).all()
    rng = np.random.default_rng(3)
    noise = [bank.statistic(gw.noise_example(detectors, rng))[0] for _ in range(6)]
    assert 3 < np.mean(noise) < 8  # the largest of many unit-variance correlations
    found = [bank.statistic(gw.merger_example(detectors, rng, 40.0, 30.0, 15.0)[0]) for _ in range(3)]
    assert min(score for score, _ in found) > max(noise)
    assert all(10 < score < 17 for score, _ in found)  # the injected 15, less the grid's mismatch, plus noise

    def chirp(m1, m2):
        return (m1 * m2) ** 0.6 / (m1 + m2) ** 0.2

    for _, (m1, m2) in found:
        assert chirp(m1, m2) == pytest.approx(chirp(40.0, 30.0), rel=0.35)
