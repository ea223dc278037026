"""Latent Lab: explore a trained generator with seeds, truncation, interpolation and edit sliders."""
import io
import random

import numpy as np
import streamlit as st
import torch
from PIL import Image

from core import latent
from core.grid import make_grid
from core.viewstate import LabState, from_params, to_params
from ui.pickers import checkpoint_names, load_generator, load_or_stop, runs_with_checkpoints

st.set_page_config(page_title="Latent Lab · GANscope", page_icon="🔭", layout="wide")
GRID = 16        # seeds in the seed browser
N_EDITS = 8      # unsupervised directions shown as sliders


@st.cache_data(max_entries=16, show_spinner="Computing edit directions for this checkpoint…")
def directions(path: str, mtime: float, which: str, method: str):
    G, _ = load_generator(path, mtime, which)
    fn = latent.sefa_directions if method == "sefa" else latent.ganspace_directions
    d, variance = fn(G, k=N_EDITS)
    return d.numpy(), variance.numpy()


@st.cache_data(max_entries=64)
def seed_grid(path: str, mtime: float, which: str, first: int, psi: float, cls: int | None):
    G, _ = load_generator(path, mtime, which)
    z = latent.truncate(latent.seed_latents(range(first, first + GRID), G.z_dim), psi)
    return latent.render(G, z, None if cls is None else torch.full((GRID,), cls))


@st.cache_data(max_entries=32)
def interpolation(path: str, mtime: float, which: str, keys: tuple, mode: str, frames: int, psi: float,
                  cls: int | None):
    G, _ = load_generator(path, mtime, which)
    z = latent.interpolate(latent.seed_latents(keys, G.z_dim), frames, mode)
    return latent.render(G, latent.truncate(z, psi), None if cls is None else torch.full((frames,), cls))


def png(images: np.ndarray, columns: int) -> bytes:
    buf = io.BytesIO()
    make_grid(images, columns=columns).save(buf, format="PNG")
    return buf.getvalue()


def gif(images: np.ndarray, ms: int = 120) -> bytes:
    frames = [Image.fromarray(im) for im in images]
    frames += frames[-2:0:-1]  # there and back again, for a seamless loop
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=ms, loop=0)
    return buf.getvalue()


def sync_url(state: LabState):
    params = to_params(state)
    if params != st.query_params.to_dict():
        st.query_params.from_dict(params)


# -- which generator -------------------------------------------------------------
st.title("Latent Lab")
if "lab" not in st.session_state:  # first load: the URL is the starting state
    st.session_state.lab = from_params(st.query_params.to_dict())
state: LabState = st.session_state.lab

runs = runs_with_checkpoints()
if not runs:
    st.info("No trained generator yet: start a run on the Training page.")
    st.stop()
names = [r.name for r in runs]
if state.run not in names:
    state.run = "demo-emoji" if "demo-emoji" in names else names[0]

with st.sidebar:
    state.run = st.selectbox("Run", names, index=names.index(state.run))
    run = runs[names.index(state.run)]
    ckpts = checkpoint_names(run)
    if state.ckpt not in ckpts:
        state.ckpt = "latest.pt"
    state.ckpt = st.selectbox("Checkpoint", ckpts, index=ckpts.index(state.ckpt),
                              help="latest.pt is refreshed while a run trains")
    path = run.folder.checkpoints / state.ckpt
    mtime = path.stat().st_mtime
    _, info = load_or_stop(path)
    if state.net not in info["nets"]:
        state.net = "G_ema"
    state.net = st.radio("Network", info["nets"], index=info["nets"].index(state.net), horizontal=True,
                         help="G_ema: the moving average of G's weights, usually cleaner")
    G, info = load_generator(str(path), mtime, state.net)
    cls = None
    if info["class_names"]:
        state.cls = min(state.cls, len(info["class_names"]) - 1)
        cls = st.selectbox("Class", range(len(info["class_names"])), index=state.cls,
                           format_func=lambda i: info["class_names"][i])
        state.cls = cls
    state.psi = st.slider("Truncation ψ", 0.0, 1.5, float(state.psi), 0.05,
                          help="Pulls every latent toward the mean: lower = more typical, less varied. "
                               "Applies everywhere on this page.")
    step = info["counters"].get("step")
    st.caption(f"{info['model']['arch']} · {info['model']['res']} px · z {G.z_dim}"
               + (f" · step {step}" if step is not None else ""))
key = (str(path), mtime, state.net)

# -- seed browser ----------------------------------------------------------------
st.subheader("Seeds")
nav = st.columns([1, 1, 1, 3])
if nav[0].button("◀ Previous"):
    state.grid = max(0, state.grid - GRID)
if nav[1].button("Next ▶"):
    state.grid += GRID
if nav[2].button("Shuffle"):
    state.grid = random.randrange(0, 100_000) // GRID * GRID
seeds = list(range(state.grid, state.grid + GRID))
images = seed_grid(*key, state.grid, state.psi, cls)
cols = st.columns(8)
for i, (seed, image) in enumerate(zip(seeds, images)):
    with cols[i % 8]:
        st.image(image, width="stretch")
        if st.button(f"{seed}", key=f"pick-{seed}", help="load this seed in the editor",
                     type="primary" if seed == state.seed else "secondary"):
            state.seed = seed
            st.rerun()


# -- editor ----------------------------------------------------------------------
@st.fragment
def editor():
    d, variance = directions(*key, state.method)
    d = torch.from_numpy(d)
    saved = latent.load_directions(run.path)
    left, right = st.columns([1, 2])
    with right:
        state.seed = int(st.number_input("Seed", min_value=0, value=int(state.seed), step=1))
        state.method = st.radio("Directions", ["sefa", "ganspace"], index=["sefa", "ganspace"].index(state.method),
                                horizontal=True, format_func={"sefa": "SeFa (closed form)",
                                                              "ganspace": "GANSpace (PCA)"}.get)
        sliders = st.columns(2)
        for i in range(len(d)):
            state.edits[i] = sliders[i % 2].slider(
                f"Direction {i + 1}", -3.0, 3.0, float(state.edits.get(i, 0.0)), 0.1, key=f"edit-{state.method}-{i}",
                help=f"variance {variance[i]:.3g}; in standard deviations of z")
        with st.expander("Raw latent dimensions and your directions"):
            dims = st.multiselect("Latent dimensions", range(G.z_dim), default=sorted(state.raw))
            state.raw = {k: st.slider(f"z[{k}]", -3.0, 3.0, float(state.raw.get(k, 0.0)), 0.1, key=f"raw-{k}")
                         for k in dims}
            state.user = {name: st.slider(name, -3.0, 3.0, float(state.user.get(name, 0.0)), 0.1,
                                          key=f"user-{name}") for name in saved}
        if st.button("Reset edits"):
            state.edits, state.raw, state.user = {}, {}, {}
            for k in [k for k in st.session_state if k.startswith(("edit-", "raw-", "user-"))]:
                del st.session_state[k]
            st.rerun(scope="fragment")
    z = latent.seed_latent(state.seed, G.z_dim)[None]
    z = latent.apply_edits(z, d, [state.edits.get(i, 0.0) for i in range(len(d))])
    for k, v in state.raw.items():
        z[0, k] += v
    for name, v in state.user.items():
        z = z + v * saved[name][None]
    image = latent.render(G, latent.truncate(z, state.psi), None if cls is None else torch.tensor([cls]))[0]
    left.image(image, caption=f"seed {state.seed}", width="stretch")
    sync_url(state)


editor()

# -- your own directions ------------------------------------------------------------
with st.expander("Make a direction from examples"):
    st.caption("Pick seeds from the grid that show more of something, and seeds that show less; the "
               "direction is the difference of their mean latents. It is saved in the run folder.")
    more = st.multiselect("More like these", seeds)
    less = st.multiselect("Less like these", seeds)
    name = st.text_input("Direction name", placeholder="e.g. rounder")
    if st.button("Save direction"):
        try:
            vector = latent.direction_from_examples(latent.seed_latents(more, G.z_dim),
                                                    latent.seed_latents(less, G.z_dim))
            latent.save_direction(run.path, name, vector, note=f"more {more}, less {less}")
        except ValueError as e:
            st.error(str(e)[0].upper() + str(e)[1:] + ".")
        else:
            st.success(f"Saved '{name.strip()}': find its slider in the editor.")

# -- interpolation ---------------------------------------------------------------
st.subheader("Interpolation")
cols = st.columns([2, 1, 1])
text = cols[0].text_input("Keyframe seeds", ", ".join(map(str, state.keys)), help="two or more, in order")
try:
    keys = [int(s) for s in text.replace(",", " ").split()]
except ValueError:
    keys = []
if len(keys) < 2:
    st.error("Enter at least two whole-number seeds, e.g. 3, 17, 42.")
else:
    state.keys = keys
    state.mode = cols[1].radio("Path", ["slerp", "lerp"], index=["slerp", "lerp"].index(state.mode),
                               horizontal=True)
    state.frames = cols[2].slider("Frames", 2, 32, int(state.frames))
    frames = interpolation(*key, tuple(state.keys), state.mode, state.frames, state.psi, cls)
    pick = st.slider("Frame", 1, len(frames), 1)
    left, right = st.columns([1, 3])
    left.image(frames[pick - 1], caption=f"frame {pick} of {len(frames)}", width="stretch")
    right.image(make_grid(frames, columns=min(len(frames), 8)), width="stretch")
    a, b = st.columns(2)
    stem = f"{state.run}-{'-'.join(map(str, state.keys))}"
    a.download_button("Download GIF", gif(frames), file_name=f"{stem}.gif", mime="image/gif")
    b.download_button("Download PNG strip", png(frames, columns=len(frames)), file_name=f"{stem}.png",
                      mime="image/png")

sync_url(state)
