"""A 2-D map of a data set (UMAP or PCA) onto which generated images are projected.

The map is fitted once on the real images' features. Generated images are then
placed without refitting, so checkpoints can be compared on the same map and
fakes can be watched moving onto the data over training.

Projection: umap-learn's transform starts each new point at the mean of its
nearest training points' positions, weighted by UMAP's fuzzy memberships, then
refines it for a few epochs with an approximate neighbour search. That search
costs ~5 s for 2,000 points on 2 cores. We compute exact neighbours in the
50-d PCA space (one matrix product) and use that same membership-weighted
placement, which takes milliseconds. Points far from every real image are
marked by their distance to the nearest real image (`nearest_dist`), so a
projection cannot hide that a fake is off the data.
"""
from dataclasses import dataclass

import numpy as np

from core.evaluation.metrics import squared_distances

PCA_DIMS = 50
NEIGHBOURS = 15


@dataclass
class RealMap:
    method: str            # "umap" or "pca"
    mean: np.ndarray       # feature mean
    components: np.ndarray  # [PCA_DIMS, dim] PCA basis
    reduced: np.ndarray    # real features in PCA space [n, PCA_DIMS]
    coords: np.ndarray     # real positions on the map [n, 2]


def _pca(feats: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    mean = feats.mean(axis=0)
    _, _, vt = np.linalg.svd(feats - mean, full_matrices=False)
    return mean, vt[:dims]


def fit_real_map(feats: np.ndarray, method: str = "umap", seed: int = 0) -> RealMap:
    """Fit the map on real features [n, dim]. UMAP is slow (seconds): cache the result."""
    feats = np.asarray(feats, dtype=np.float32)
    mean, components = _pca(feats, min(PCA_DIMS, *feats.shape))
    reduced = (feats - mean) @ components.T
    if method == "pca":
        coords = reduced[:, :2].copy()
    elif method == "umap":
        import umap  # imported lazily: importing umap-learn (numba) takes ~15 s cold
        model = umap.UMAP(n_neighbors=min(NEIGHBOURS, len(feats) - 1), random_state=seed, n_jobs=1)
        coords = model.fit_transform(reduced).astype(np.float32)
    else:
        raise ValueError(f"unknown map method {method!r}")
    return RealMap(method, mean, components, reduced.astype(np.float32), coords)


def project(real_map: RealMap, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place new feature vectors on the map: (coords [m, 2], distance to nearest real [m])."""
    reduced = (np.asarray(feats, dtype=np.float32) - real_map.mean) @ real_map.components.T
    if real_map.method == "pca":
        d2 = squared_distances(reduced, real_map.reduced)
        return reduced[:, :2].astype(np.float32), np.sqrt(d2.min(axis=1))
    k = min(NEIGHBOURS, len(real_map.reduced))
    d2 = squared_distances(reduced, real_map.reduced)
    idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
    dist = np.sqrt(np.take_along_axis(d2, idx, axis=1))
    order = np.argsort(dist, axis=1)
    idx, dist = np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)
    weights = memberships(dist)
    coords = (weights[:, :, None] * real_map.coords[idx]).sum(axis=1) / weights.sum(axis=1, keepdims=True)
    return coords.astype(np.float32), dist[:, 0]


def memberships(dist: np.ndarray, iterations: int = 64) -> np.ndarray:
    """UMAP's fuzzy membership of each point to its k neighbours (sorted distances [m, k]).

    w_j = exp(-(d_j - rho) / sigma), rho = distance to the nearest neighbour and
    sigma found by bisection so that the weights sum to log2(k) (McInnes et al. 2018)."""
    k = dist.shape[1]
    target = np.log2(k)
    rho = dist[:, :1]
    lo, hi = np.zeros((len(dist), 1)), np.full((len(dist), 1), np.inf)
    sigma = np.ones((len(dist), 1))
    for _ in range(iterations):
        total = np.exp(-np.maximum(dist - rho, 0) / sigma).sum(axis=1, keepdims=True)
        too_big = total > target
        hi = np.where(too_big, sigma, hi)
        lo = np.where(too_big, lo, sigma)
        sigma = np.where(np.isinf(hi), sigma * 2, (lo + hi) / 2)
    return np.exp(-np.maximum(dist - rho, 0) / np.maximum(sigma, 1e-12))
