"""Latent-space maths for exploring a trained generator (plain PyTorch, no streamlit).

Latents are z ~ N(0, I). Truncation pulls z toward the mean latent (the
origin) by psi. Edit directions are unit vectors in z-space, ordered by how
much the generator's early features vary along them, so a slider value
counts standard deviations of z along that direction.
"""
import json
import time
from pathlib import Path

import numpy as np
import torch

from core import atomic
from core.grid import to_uint8
from core.training.config import MAX_SEED

DIRECTIONS_FILE = "directions.json"


# -- latents -------------------------------------------------------------------

def seed_latent(seed: int, z_dim: int) -> torch.Tensor:
    """The same z for the same seed, on every machine (CPU generator)."""
    return torch.randn(z_dim, generator=torch.Generator().manual_seed(int(seed)))


def seed_latents(seeds, z_dim: int) -> torch.Tensor:
    return torch.stack([seed_latent(s, z_dim) for s in seeds])


def parse_seeds(text: str, at_least: int = 1) -> list[int]:
    """Seeds typed as "3, 17 42": whole numbers from 0 to MAX_SEED, or a ValueError that says why."""
    try:
        seeds = [int(s) for s in text.replace(",", " ").split()]
    except ValueError:
        raise ValueError(f"seeds are whole numbers, e.g. 3, 17, 42 (not {text.strip()[:40]!r})") from None
    if any(not 0 <= s <= MAX_SEED for s in seeds):
        raise ValueError(f"seeds go from 0 to {MAX_SEED:,}")
    if len(seeds) < at_least:
        raise ValueError(f"enter at least {at_least} seed{'s' * (at_least != 1)}, e.g. 3, 17, 42")
    return seeds


def truncate(z: torch.Tensor, psi: float, mean: torch.Tensor | None = None) -> torch.Tensor:
    """psi = 1: unchanged; psi = 0: every latent becomes the mean latent."""
    mean = torch.zeros_like(z) if mean is None else mean
    return mean + psi * (z - mean)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of the direction, linear of the norm.

    Gaussian latents live near a sphere; a straight line between two of them
    passes through the low-norm middle, where images go bland. Endpoints are
    returned exactly; equal norms stay equal all the way.
    """
    na, nb = a.norm(), b.norm()
    ua, ub = a / na, b / nb
    omega = torch.arccos((ua * ub).sum().clamp(-1.0, 1.0))
    if t == 0:
        return a.clone()
    if t == 1:
        return b.clone()
    if omega.abs() < 1e-6:  # (nearly) the same direction
        direction = ua
    else:
        direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / torch.sin(omega)
        direction = direction / direction.norm()
    return direction * (na + (nb - na) * t)


def interpolate(keyframes: torch.Tensor, n_frames: int, mode: str = "slerp") -> torch.Tensor:
    """n_frames latents evenly spaced along the path through all keyframes (in order)."""
    step = {"slerp": slerp, "lerp": lerp}[mode]
    k = keyframes.shape[0]
    if k < 2:
        raise ValueError("interpolation needs at least 2 keyframes")
    frames = []
    for i in range(n_frames):
        pos = (k - 1) * i / max(n_frames - 1, 1)
        seg = min(int(pos), k - 2)
        frames.append(step(keyframes[seg], keyframes[seg + 1], pos - seg))
    return torch.stack(frames)


# -- rendering -------------------------------------------------------------------

@torch.no_grad()
def render(G: torch.nn.Module, z: torch.Tensor, c: torch.Tensor | None = None) -> np.ndarray:
    """uint8 [N, H, W, 3] images for latents z (and classes c)."""
    device = next(G.parameters()).device
    if c is None and G.n_classes:
        c = torch.zeros(len(z), dtype=torch.long)  # a conditional model always needs a class
    x = G(z.to(device), None if c is None else c.to(device))
    return to_uint8(x)


def _classes(cls: int | None, n: int) -> torch.Tensor | None:
    return None if cls is None else torch.full((n,), cls)


def render_seeds(G: torch.nn.Module, seeds, psi: float = 1.0, cls: int | None = None) -> np.ndarray:
    """The seeds' images, truncated by psi, all of class cls (None: the model's default)."""
    z = truncate(seed_latents(seeds, G.z_dim), psi)
    return render(G, z, _classes(cls, len(z)))


def render_interpolation(G: torch.nn.Module, keyframes, n_frames: int, mode: str = "slerp",
                         psi: float = 1.0, cls: int | None = None) -> np.ndarray:
    """n_frames images along the path through the keyframes' latents (see interpolate); a
    keyframe is a seed or a latent of its own (a sequence of z_dim numbers: a projected picture)."""
    keys = [seed_latent(k, G.z_dim) if isinstance(k, int) else torch.as_tensor(k, dtype=torch.float32)
            for k in keyframes]
    z = interpolate(torch.stack(keys), n_frames, mode)
    return render(G, truncate(z, psi), _classes(cls, n_frames))


def render_edit(G: torch.nn.Module, seed: int | torch.Tensor, directions, amounts,
                raw: dict[int, float] | None = None, user: list[tuple[torch.Tensor, float]] | None = None,
                psi: float = 1.0, cls: int | None = None) -> np.ndarray:
    """The editor's image [H, W, 3]: the edited latent (see edited_latent; directions [k, z_dim],
    a tensor or an array), truncated by psi."""
    z = edited_latent(seed, G.z_dim, torch.as_tensor(directions), amounts, raw, user)
    return render(G, truncate(z, psi), _classes(cls, 1))[0]


# -- unsupervised directions -------------------------------------------------------

def first_layer_weight(G: torch.nn.Module) -> torch.Tensor:
    """The first layer as a matrix W [features, z_dim] acting on z (class inputs dropped)."""
    z_dim = G.z_dim
    if hasattr(G, "fc"):  # resnet: Linear(z [+ class embedding] -> 4x4 features)
        return G.fc.weight[:, :z_dim].detach()
    # dcgan, fastgan: ConvTranspose2d(z [+ class], C, 4) on a 1x1 input
    first = G.init[0] if hasattr(G, "init") else G.main[0]
    return first.weight[:z_dim].detach().reshape(z_dim, -1).T


def sefa_directions(G: torch.nn.Module, k: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """SeFa (Shen & Zhou 2021): eigenvectors of W^T W of the first layer, largest first.

    Returns (directions [k, z_dim], orthonormal rows; eigenvalues [k], the
    variance of the first layer's output along each direction for unit z)."""
    W = first_layer_weight(G).double()
    values, vectors = torch.linalg.eigh(W.T @ W)
    order = torch.argsort(values, descending=True)[:k]
    return vectors[:, order].T.float().contiguous(), values[order].float()


def ganspace_directions(G: torch.nn.Module, k: int = 10, n: int = 2000, seed: int = 0
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """GANSpace (Härkönen et al. 2020) for generators without a mapping network.

    PCA of early activations over n random latents, each principal component
    mapped back to z by least squares (z ~ coords @ B), then made orthonormal
    in order of explained variance. Returns (directions [k, z_dim], variances [k])."""
    G = G.eval()
    device = next(G.parameters()).device
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    c = torch.zeros(n, dtype=torch.long, device=device) if G.n_classes else None
    with torch.no_grad():
        feats = G.early_features(z, c).flatten(1).double()
    feats = feats - feats.mean(dim=0)
    if feats.shape[1] <= 4096:
        _, s, vh = torch.linalg.svd(feats, full_matrices=False)
        v = vh.T
    else:  # wide features: a randomised partial PCA is enough for the top k
        _, s, v = torch.pca_lowrank(feats, q=min(k + 10, n), center=False)
    k = min(k, v.shape[1])
    coords = feats @ v[:, :k]                                   # [n, k]
    B = torch.linalg.lstsq(coords, z.double()).solution        # [k, z_dim]
    q, _ = torch.linalg.qr(B.T)                                 # Gram-Schmidt in variance order
    directions = q.T * torch.sign((q.T * B).sum(dim=1, keepdim=True))  # keep each PC's sign
    variances = (s[:k] ** 2) / (n - 1)
    return directions.float().contiguous(), variances.float()


def apply_edits(z: torch.Tensor, directions: torch.Tensor, amounts) -> torch.Tensor:
    """z + sum_i amount_i * direction_i (amounts in standard deviations of z)."""
    amounts = torch.as_tensor(amounts, dtype=z.dtype)
    return z + amounts @ directions


def edited_latent(seed: int | torch.Tensor, z_dim: int, directions: torch.Tensor, amounts,
                  raw: dict[int, float] | None = None, user: list[tuple[torch.Tensor, float]] | None = None
                  ) -> torch.Tensor:
    """The editor's latent [1, z_dim]: a seed's z (or a given one, say a projected picture's)
    moved along the unsupervised directions, single latent dimensions (raw: dimension -> amount)
    and the user's own directions."""
    base = seed.float() if isinstance(seed, torch.Tensor) else seed_latent(seed, z_dim)
    z = apply_edits(base[None].clone(), directions, amounts)
    for k, v in (raw or {}).items():
        z[0, k] += v
    for vector, v in user or []:
        z = z + v * vector[None]
    return z


# -- user-defined directions ------------------------------------------------------------

def direction_from_examples(more: torch.Tensor, less: torch.Tensor) -> torch.Tensor:
    """'More like these, less like those': the difference of means, as a unit vector."""
    if len(more) == 0 or len(less) == 0:
        raise ValueError("mark at least one example as 'more' and one as 'less'")
    d = more.mean(dim=0) - less.mean(dim=0)
    norm = d.norm()
    if norm < 1e-8:
        raise ValueError("the two groups have the same mean latent; pick different examples")
    return d / norm


def load_directions(run_dir: Path | str, z_dim: int | None = None) -> dict[str, torch.Tensor]:
    """The run's named directions; entries that are damaged, or of another length than z_dim,
    are left out (the file is plain JSON a user may edit)."""
    path = Path(run_dir) / DIRECTIONS_FILE
    try:
        saved = json.loads(path.read_text()) if path.exists() else {}
    except (OSError, ValueError):
        return {}
    directions = {}
    for name, item in saved.items() if isinstance(saved, dict) else ():
        try:
            vector = torch.tensor(item["vector"], dtype=torch.float32)
        except (KeyError, TypeError, ValueError, RuntimeError):
            continue
        if vector.ndim == 1 and len(vector) == (z_dim or len(vector)) > 0 and torch.isfinite(vector).all():
            directions[name] = vector
    return directions


def save_direction(run_dir: Path | str, name: str, vector: torch.Tensor, note: str = "") -> None:
    """Named directions live in the run folder as JSON (readable, no pickles)."""
    name = name.strip()
    if not name or len(name) > 60:
        raise ValueError("a direction needs a name of 1-60 characters")
    entry = {"vector": [round(float(v), 7) for v in vector], "note": note, "created": time.time()}
    atomic.update_json(Path(run_dir) / DIRECTIONS_FILE, lambda saved: {**saved, name: entry})
