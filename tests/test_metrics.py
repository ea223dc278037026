"""core.metrics against closed forms, brute force and the papers' expected behaviour."""
import numpy as np
import pytest
from scipy.spatial.distance import cdist

from core.evaluation import metrics


def gaussian(n, dim, mean=0.0, std=1.0, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, dim)) * std + mean


def mixture(n, centres, seed=0, std=0.3):
    """n points around the given mode centres, equally many per mode."""
    rng = np.random.default_rng(seed)
    which = np.arange(n) % len(centres)
    return centres[which] + rng.normal(size=(n, centres.shape[1])) * std


# --- FID ---------------------------------------------------------------------------------

def test_fid_of_a_set_with_itself_is_zero():
    x = gaussian(500, 16)
    assert abs(metrics.fid(x, x)) < 1e-8
    x = gaussian(40, 64)  # fewer points than dimensions: singular covariance
    assert abs(metrics.fid(x, x)) < 1e-8


def test_frechet_distance_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    var1, var2 = rng.uniform(0.2, 3, 6), rng.uniform(0.2, 3, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert metrics.frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2)) == pytest.approx(expected, rel=1e-9)


def test_fid_estimates_the_shift_between_unit_gaussians():
    mu = np.array([1.0, -2.0, 0.5, 0.0, 1.5, -0.5, 0.0, 2.0])  # |mu|^2 = 12.0
    a = gaussian(20_000, 8, seed=1)
    b = gaussian(20_000, 8, mean=mu, seed=2)
    assert metrics.fid(a, b) == pytest.approx(mu @ mu, rel=0.02)


def test_fid_estimates_the_distance_between_diagonal_gaussians():
    mu = np.array([0.5, 0.0, -1.0, 0.0, 0.0, 1.0])
    std_a = np.array([1.0, 2.0, 0.5, 1.0, 3.0, 1.0])
    std_b = np.array([1.0, 1.0, 1.0, 2.0, 1.0, 0.5])
    expected = mu @ mu + np.sum((std_a - std_b) ** 2)  # sqrt(variance) = std
    a = gaussian(40_000, 6, std=std_a, seed=3)
    b = gaussian(40_000, 6, mean=mu, std=std_b, seed=4)
    assert metrics.fid(a, b) == pytest.approx(expected, rel=0.03)


@pytest.mark.parametrize("n_a, n_b, dim", [(300, 250, 20), (30, 45, 64)])
def test_fid_agrees_with_the_sqrtm_reference(n_a, n_b, dim):
    """fid() avoids sqrtm; both sides of its n <= dim switch must match the reference."""
    a = np.abs(gaussian(n_a, dim, seed=5))
    b = np.abs(gaussian(n_b, dim, std=1.3, mean=0.2, seed=6))
    reference = metrics.frechet_distance(a.mean(0), np.cov(a, rowvar=False),
                                         b.mean(0), np.cov(b, rowvar=False))
    assert metrics.fid(a, b) == pytest.approx(reference, rel=1e-6)


def test_fid_grows_with_the_shift():
    a = gaussian(2000, 8, seed=7)
    fids = [metrics.fid(a, gaussian(2000, 8, mean=shift, seed=8)) for shift in (0.0, 0.5, 1.0)]
    assert fids[0] < 0.05 < fids[1] < fids[2]


# --- KID ---------------------------------------------------------------------------------

def test_kid_of_same_distribution_is_zero_within_its_error():
    x, y = gaussian(1500, 32), gaussian(1500, 32, seed=9)  # independent samples
    mean, se = metrics.kid(x, y, subsets=50, subset_size=300)
    assert se > 0 and abs(mean) < 3 * se


def test_kid_of_a_set_with_itself_is_near_zero():
    """Not exactly 0: subsets drawn from one set share points, and each shared point adds
    its large self-similarity k(x, x) to the cross term, so KID(x, x) is slightly negative."""
    x = gaussian(1500, 32)
    mean, _ = metrics.kid(x, x, subsets=50, subset_size=300)
    shifted, _ = metrics.kid(x, gaussian(1500, 32, mean=0.3, seed=3), subsets=50, subset_size=300)
    assert -0.05 * shifted < mean <= 0


def test_kid_sees_a_shift_and_is_reproducible():
    x, y = gaussian(800, 32), gaussian(800, 32, mean=0.5, seed=10)
    mean, se = metrics.kid(x, y, subsets=20, subset_size=200)
    assert mean > 20 * se > 0
    assert metrics.kid(x, y, subsets=20, subset_size=200) == (mean, se)  # same seed
    assert metrics.kid(x, y, subsets=20, subset_size=200, seed=1) != (mean, se)


def test_kid_matches_the_formula_on_one_whole_set():
    """One subset as large as both sets: the plain unbiased MMD^2 of the two sets."""
    x, y = gaussian(30, 5, seed=11), gaussian(30, 5, mean=0.3, seed=12)
    k = lambda p, q: (p @ q.T / 5 + 1) ** 3  # noqa: E731
    m = 30
    expected = ((k(x, x).sum() - np.trace(k(x, x))) / (m * (m - 1))
                + (k(y, y).sum() - np.trace(k(y, y))) / (m * (m - 1))
                - 2 * k(x, y).mean())
    assert metrics.kid(x, y, subsets=1, subset_size=1000) == pytest.approx((expected, 0.0), rel=1e-10)


def test_kid_error_is_not_zero_when_the_sets_are_no_larger_than_a_subset():
    """1,000 fakes against 1,000 reals with subsets of 1,000: the subsets must still differ."""
    x, y = gaussian(400, 16, seed=16), gaussian(400, 16, mean=0.3, seed=17)
    mean, se = metrics.kid(x, y, subsets=20, subset_size=1000)
    whole, _ = metrics.kid(x, y, subsets=1, subset_size=1000)
    assert se > 0
    assert mean == pytest.approx(whole, abs=4 * se)


def test_kid_pools_large_sets(monkeypatch):
    monkeypatch.setattr(metrics, "KID_POOL", 300)
    x, y = gaussian(1000, 16), gaussian(1000, 16, mean=0.5, seed=13)
    mean, se = metrics.kid(x, y, subsets=10, subset_size=100)
    monkeypatch.setattr(metrics, "KID_POOL", 5000)
    unpooled, _ = metrics.kid(x, y, subsets=10, subset_size=100)
    assert mean == pytest.approx(unpooled, rel=0.2)


# --- Nearest neighbours --------------------------------------------------------------------

def test_nearest_finds_planted_copies_at_distance_zero():
    real = np.abs(gaussian(500, 2048, seed=14)).astype(np.float32)  # like Inception features
    fake = np.abs(gaussian(60, 2048, seed=15)).astype(np.float32)
    planted = np.arange(0, 60, 2)
    fake[planted] = real[planted * 7]
    idx, dist = metrics.nearest(real, fake, k=3)
    assert idx.shape == dist.shape == (60, 3) and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[planted, 0], planted * 7)
    assert (dist[planted, 0] == 0.0).all()  # exactly: the expansion |x|^2+|y|^2-2xy is not
    assert (dist[:, 1:] > 1).all() and (dist[1::2, 0] > 1).all()


def test_nearest_matches_brute_force_across_blocks(monkeypatch):
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 100)  # many small blocks
    real, fake = gaussian(90, 6, seed=16), gaussian(37, 6, seed=17)
    idx, dist = metrics.nearest(real, fake, k=4)
    full = cdist(fake, real)
    expected_idx = np.argsort(full, axis=1)[:, :4]
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_allclose(dist, np.take_along_axis(full, expected_idx, axis=1), rtol=1e-12)
    assert (np.diff(dist, axis=1) >= 0).all()


def test_nearest_rejects_bad_k_and_mismatched_features():
    real = gaussian(5, 3)
    with pytest.raises(ValueError):
        metrics.nearest(real, real, k=6)
    with pytest.raises(ValueError):
        metrics.nearest(real, gaussian(5, 4), k=1)


def test_non_finite_features_are_refused():
    x = gaussian(10, 3)
    x[4, 1] = np.nan
    for fn in (metrics.fid, metrics.kid, metrics.precision_recall, metrics.density_coverage):
        with pytest.raises(ValueError, match="NaN"):
            fn(gaussian(10, 3), x)


# --- Precision / recall, density / coverage ------------------------------------------------

def brute_force(real, fake, k_pr, k_dc):
    """The papers' definitions written out with full distance matrices."""
    def radii(x, k):
        return np.sort(cdist(x, x), axis=1)[:, k]  # column 0 is the point itself

    d = cdist(real, fake)  # [n_real, n_fake]
    precision = np.mean((d <= radii(real, k_pr)[:, None]).any(axis=0))
    recall = np.mean((d <= radii(fake, k_pr)[None, :]).any(axis=1))
    r = radii(real, k_dc)[:, None]
    density = (d <= r).sum() / (k_dc * len(fake))
    coverage = np.mean(d.min(axis=1) <= r[:, 0])
    return precision, recall, density, coverage


def test_manifold_metrics_match_brute_force(monkeypatch):
    monkeypatch.setattr(metrics, "BLOCK_ELEMENTS", 200)
    real, fake = gaussian(80, 4, seed=18), gaussian(60, 4, mean=0.7, std=1.4, seed=19)
    precision, recall, density, coverage = brute_force(real, fake, k_pr=3, k_dc=5)
    assert metrics.precision_recall(real, fake, k=3) == pytest.approx((precision, recall))
    assert metrics.density_coverage(real, fake, k=5) == pytest.approx((density, coverage))
    assert 0 < precision < 1 and 0 < recall < 1 and 0 < coverage < 1  # a non-trivial case


def test_identical_sets_are_fully_precise_and_covered():
    x = gaussian(400, 16, seed=20)
    assert metrics.precision_recall(x, x) == (1.0, 1.0)
    density, coverage = metrics.density_coverage(x, x)
    assert coverage == 1.0 and density >= 1.0


def test_same_distribution_scores_high_and_a_shift_lowers_both():
    real = gaussian(1000, 16, seed=21)
    fair = metrics.precision_recall(real, gaussian(1000, 16, seed=22))
    shifted = metrics.precision_recall(real, gaussian(1000, 16, mean=1.0, seed=23))
    assert min(fair) > 0.6
    assert shifted[0] < fair[0] - 0.3 and shifted[1] < fair[1] - 0.3

    fair_dc = metrics.density_coverage(real, gaussian(1000, 16, seed=22))
    shifted_dc = metrics.density_coverage(real, gaussian(1000, 16, mean=1.0, seed=23))
    assert 0.7 < fair_dc[0] < 1.3 and fair_dc[1] > 0.9
    assert shifted_dc[0] < 0.5 * fair_dc[0] and shifted_dc[1] < 0.5 * fair_dc[1]


def test_mode_collapse_keeps_precision_and_loses_recall():
    centres = np.eye(4, 8) * 10  # four well separated modes
    real = mixture(800, centres, seed=24)
    fair_precision, fair_recall = metrics.precision_recall(real, mixture(800, centres, seed=26))
    collapsed = mixture(800, centres[:1], seed=25)  # every fake in mode 0
    precision, recall = metrics.precision_recall(real, collapsed)
    assert precision > max(0.75, fair_precision - 0.1)  # as realistic as a fair sample...
    assert recall < 0.3 < fair_recall                  # ...but a quarter of the data only
    density, coverage = metrics.density_coverage(real, collapsed)
    assert coverage < 0.3 and density > 0.8
