"""How varied and how real-looking a sample grid is: the evidence for mode collapse and stalls.

Every grid a run saves is drawn from the same fixed latents, so grid after grid is the
same 64 generated images as G learns. Three numbers per grid, each from 64 images, set
against the same numbers for the run's 64 real images (samples/reals.png):

- shapes:  the mean distance between two images of the grid, in EfficientNet-Lite0
           features (what the images show);
- colours: the mean Hellinger distance between the images' colour histograms (4 levels
           per channel). ImageNet features hardly see colour: a grid that has collapsed
           to one hue can keep 0.8 of the reals' feature diversity (measured on GANscope
           runs), but not of their colour diversity;
- nearest: each image's distance to its nearest other image of the grid (median);
- twins:   the share of images with a near-identical other image in the grid;
- kid64:   KID between the grid and the real images in those features (64 against 64, one
           unbiased estimate): lower is closer to the real images as a whole, which a grid of
           grey averages is not, though each of them lies near some real image.
"""
import numpy as np

from core.evaluation.metrics import kid, squared_distances

GRID_COLUMNS, GRID_GAP = 8, 2  # how the trainer lays out its grids (core.grid.make_grid)
COLOUR_LEVELS = 4              # per channel: 64 colour bins
# Two generated images closer than this fraction of the median nearest-neighbour distance
# between real images are twins. Real emoji grids have none below 0.5; an untrained G's
# grid (all one grey blur) has 0.1-0.2 of it.
TWIN_DISTANCE = 0.5


def split_grid(sheet: np.ndarray, columns: int = GRID_COLUMNS, gap: int = GRID_GAP) -> np.ndarray:
    """The square images of a make_grid sheet, uint8 [N, S, S, 3] (trailing blank cells dropped)."""
    side = (sheet.shape[1] - gap) // columns - gap
    rows = (sheet.shape[0] - gap) // (side + gap)
    if side < 1 or rows < 1:
        raise ValueError(f"a {sheet.shape[1]}x{sheet.shape[0]} picture is not a grid of {columns} columns")
    cells = [sheet[gap + r * (side + gap):][:side, gap + c * (side + gap):][:, :side]
             for r in range(rows) for c in range(columns)]
    return np.stack([cell for cell in cells if (cell != 255).any()] or cells[:1])


def colour_histograms(images: np.ndarray) -> np.ndarray:
    bins = (images.reshape(len(images), -1, 3).astype(np.int64) * COLOUR_LEVELS) // 256
    index = (bins[..., 0] * COLOUR_LEVELS + bins[..., 1]) * COLOUR_LEVELS + bins[..., 2]
    counts = np.stack([np.bincount(i, minlength=COLOUR_LEVELS ** 3) for i in index]).astype(np.float64)
    return counts / counts.sum(axis=1, keepdims=True)


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(squared_distances(a, b), 0.0))


def _mean_pairwise(d: np.ndarray) -> float:
    return float(d[np.triu_indices(len(d), 1)].mean()) if len(d) > 1 else 0.0


def stats(images: np.ndarray, feats: np.ndarray, real: "Reference | None" = None) -> dict:
    """The grid's numbers from its uint8 images and their EfficientNet features."""
    d = _distances(feats, feats)
    hist = np.sqrt(colour_histograms(images))  # Hellinger distance = Euclidean on square roots
    np.fill_diagonal(d, np.inf)
    nearest = d.min(axis=1) if len(d) > 1 else np.zeros(1)
    out = {"shapes": _mean_pairwise(np.where(np.isinf(d), 0.0, d)),
           "colours": _mean_pairwise(_distances(hist, hist) / np.sqrt(2)),
           "nearest": float(np.median(nearest))}
    if real is not None:
        out["kid64"] = kid(feats, real.feats, subsets=1, subset_size=len(feats))[0]
        out["twins"] = float((nearest < TWIN_DISTANCE * real.nearest).mean())
    return out


class Reference:
    """The real images' grid: its numbers, and its features to measure fakes against."""

    def __init__(self, images: np.ndarray, device="cpu"):
        self.feats = extract(images, device)
        self.stats = stats(images, self.feats)
        self.nearest = self.stats["nearest"]

    def measure(self, images: np.ndarray, device="cpu") -> dict:
        return stats(images, extract(images, device), self)


def extract(images: np.ndarray, device="cpu") -> np.ndarray:
    from core import features  # torch and the weights only when a grid is measured
    return features.extract(images, "efficientnet", device=device)
