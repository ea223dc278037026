"""The Latent Lab's view state <-> URL query parameters, so a copied link reproduces the view.

Only values that differ from the defaults go into the URL. Anything malformed in
a hand-edited link falls back to its default instead of breaking the page.
"""
from dataclasses import dataclass, field, fields

EDIT_SEP, PAIR_SEP = ",", ":"


@dataclass
class LabState:
    run: str = ""
    ckpt: str = "latest.pt"
    net: str = "G_ema"                 # G_ema | G
    seed: int = 0                      # the selected seed
    grid: int = 0                      # first seed shown in the seed grid
    psi: float = 1.0                   # truncation
    cls: int = 0                       # class, for conditional models
    method: str = "sefa"               # sefa | ganspace
    edits: dict[int, float] = field(default_factory=dict)   # direction index -> amount (std)
    raw: dict[int, float] = field(default_factory=dict)     # latent dimension -> amount
    user: dict[str, float] = field(default_factory=dict)    # saved direction name -> amount
    keys: list[int] = field(default_factory=lambda: [0, 1])  # interpolation keyframe seeds
    mode: str = "slerp"
    frames: int = 8


DEFAULTS = LabState()
CHOICES = {"net": ("G_ema", "G"), "method": ("sefa", "ganspace"), "mode": ("slerp", "lerp")}


def _pairs(d: dict) -> str:
    # Sorted, so the same view always gives the same link.
    return EDIT_SEP.join(f"{k}{PAIR_SEP}{v:g}" for k, v in sorted(d.items()) if v)


def _parse_pairs(text: str, key_type) -> dict:
    out = {}
    for item in text.split(EDIT_SEP):
        k, sep, v = item.rpartition(PAIR_SEP)
        if sep and k:
            out[key_type(k)] = float(v)
    return out


def to_params(state: LabState) -> dict[str, str]:
    params = {}
    for f in fields(LabState):
        value = getattr(state, f.name)
        if value == getattr(DEFAULTS, f.name):
            continue
        if isinstance(value, dict):
            text = _pairs(value)
            if text:
                params[f.name] = text
        elif isinstance(value, list):
            params[f.name] = EDIT_SEP.join(str(v) for v in value)
        else:
            params[f.name] = f"{value:g}" if isinstance(value, float) else str(value)
    return params


def from_params(params) -> LabState:
    state = LabState()
    readers = {
        "run": str, "ckpt": str, "seed": int, "grid": int, "cls": int, "psi": float, "frames": int,
        "net": str, "method": str, "mode": str,
        "edits": lambda t: _parse_pairs(t, int), "raw": lambda t: _parse_pairs(t, int),
        "user": lambda t: _parse_pairs(t, str),
        "keys": lambda t: [int(v) for v in t.split(EDIT_SEP) if v.strip()],
    }
    for name, read in readers.items():
        if name not in params:
            continue
        try:
            value = read(params[name])
        except (TypeError, ValueError):
            continue  # a malformed value keeps its default
        if name in CHOICES and value not in CHOICES[name]:
            continue
        setattr(state, name, value)
    state.psi = min(max(state.psi, 0.0), 2.0)
    state.frames = min(max(state.frames, 2), 64)
    if len(state.keys) < 2:
        state.keys = list(DEFAULTS.keys)
    return state
