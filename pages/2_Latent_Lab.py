"""Latent Lab: explore a trained generator with seeds, truncation, interpolation, edit sliders and
your own pictures put into its latent space.

Every setting is a keyed widget linked to the URL (ui.state), so a copied link
reproduces the view and no change is lost between reruns; a link's values are checked
against what each widget allows before it takes them (ui.links).
"""
import random
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from core import video
from core.data.images import UnusableImage, decode_image
from core.data.sources import DataError
from core.evaluation import evaluate
from core.explore import generate, latent, project, standalone
from core.grid import make_grid, png_bytes, round_trip_gif
from ui.embedding import real_images_of
from ui.guard import local_only
from ui.links import linked, notice
from ui.pickers import load_generator, load_or_stop, pick_run_and_checkpoint
from ui.state import (
    KEPT,
    apply_pending,
    keep_valid,
    set_on_next_run,
    set_values,
    shelf_keys,
    shelved,
    swap_in,
)
from ui.text import plain, sentence

st.set_page_config(page_title="Latent Lab · GANscope", page_icon="🔭", layout="wide")
local_only()  # refuses to work when the app listens beyond this machine uninvited
apply_pending()  # a picture just put into the latent space becomes the editor's start
GRID = 16        # seeds in the seed browser
N_EDITS = 8      # unsupervised directions shown as sliders
METHODS = {"SeFa": "sefa", "GANSpace": "ganspace"}  # shown (and in links) -> internal name
SEED = "a seed"  # the editor's start when it is not one of your pictures
VIDEO_SIDES = [128, 256, 512, 1024]
PREVIEW = 9      # images of a made set shown on the page (all of them are in the zip)
EDIT = dict(min_value=-3.0, max_value=3.0, value=0.0, step=0.1)  # every edit slider, in std of z


@st.cache_data(max_entries=16, show_spinner="Computing edit directions for this checkpoint…")
def directions(path: str, mtime: float, which: str, method: str):
    G, _ = load_generator(path, mtime, which)
    fn = latent.sefa_directions if method == "sefa" else latent.ganspace_directions
    d, variance = fn(G, k=N_EDITS)
    return d.numpy(), variance.numpy()


@st.cache_data(max_entries=64)
def seed_grid(path: str, mtime: float, which: str, first: int, psi: float, cls: int | None):
    G, _ = load_generator(path, mtime, which)
    return latent.render_seeds(G, range(first, first + GRID), psi, cls)


@st.cache_data(max_entries=32)
def interpolation(path: str, mtime: float, which: str, keys: tuple, mode: str, frames: int, psi: float,
                  cls: int | None):
    G, _ = load_generator(path, mtime, which)
    return latent.render_interpolation(G, keys, frames, mode, psi, cls)


def edit_keys(z_dim: int, saved: dict) -> list[str]:
    """The keys of the edit sliders that hold a value: either method's directions, raw
    dimensions, saved directions (what "Reset edits" sets back to 0)."""
    keys = ([f"{m}{i + 1}" for m in METHODS.values() for i in range(N_EDITS)] + [f"z{k}" for k in range(z_dim)]
            + [f"dir-{name}" for name in saved])
    return [k for k in keys if k in st.session_state or k in shelf_keys()]


# -- which generator -------------------------------------------------------------
st.title("Latent Lab")
notice()
run, path = pick_run_and_checkpoint()
mtime = path.stat().st_mtime
_, info = load_or_stop(path)
with st.sidebar:
    keep_valid("net", info["nets"], "G_ema")
    net = linked(st.radio, "Network", info["nets"], key="net", horizontal=True,
                 help="G_ema: the moving average of G's weights, usually cleaner")
    G, info = load_or_stop(path, net)
    cls = None
    if info["class_names"]:
        keep_valid("class", info["class_names"])
        cls = info["class_names"].index(linked(st.selectbox, "Class", info["class_names"], key="class"))
    psi = linked(st.slider, "Truncation ψ", 0.0, 1.5, 1.0, 0.05, key="psi",
                 help="Pulls every latent toward the mean: lower = more typical, less varied. "
                      "Applies everywhere on this page.")
    step = info["counters"].get("step")
    st.caption(f"{info['model']['arch']} · {info['model']['res']} px · z {G.z_dim}"
               + (f" · step {step}" if step is not None else ""))
key = (str(path), mtime, net)

# -- seed browser ----------------------------------------------------------------
st.subheader("Seeds")
first = st.session_state.get("grid", 0)
nav = st.columns([1, 1, 1, 3], vertical_alignment="bottom")
nav[0].button("◀ Previous", on_click=set_values, args=({"grid": max(0, first - GRID)},))
nav[1].button("Next ▶", on_click=set_values, args=({"grid": min(first + GRID, latent.MAX_SEED - GRID)},))
nav[2].button("Shuffle", on_click=set_values, args=({"grid": random.randrange(0, 100_000) // GRID * GRID},))
first = linked(nav[3].number_input, "Seeds from", min_value=0, max_value=latent.MAX_SEED - GRID, value=0,
               step=GRID, key="grid")
seeds = list(range(first, first + GRID))
images = seed_grid(*key, first, psi, cls)
cols = st.columns(8)
for i, (seed, image) in enumerate(zip(seeds, images)):
    with cols[i % 8]:
        st.image(image, width="stretch")
        st.button(f"{seed}", key=f"pick-{seed}", help="load this seed in the editor",
                  on_click=set_values, args=({"seed": seed, "start": SEED},))


# -- editor ----------------------------------------------------------------------
@st.fragment
def editor():
    saved = latent.load_directions(run.path, G.z_dim)
    pictures = project.load_projections(run.path, G.z_dim, G.n_classes)
    left, right = st.columns([1, 2])
    with right:
        starts = [SEED, *pictures]
        keep_valid("start", starts, SEED)
        start = linked(st.selectbox, "Start from", starts, key="start", help="a seed, or one of your pictures "
                       "put into the latent space (see 'Your picture' below)")
        # The seed box hides while a picture is the start: shelved, it comes back with its value.
        swap_in("start", "seed" if start == SEED else "picture", ["seed"])
        if start == SEED:
            seed = shelved(linked, "seed", widget=st.number_input, label="Seed", min_value=0,
                           max_value=latent.MAX_SEED, value=0, step=1)
            base, base_cls, base_psi, caption = seed, cls, psi, f"seed {seed}"
        else:  # as projected: ψ would pull it away from the picture it was fitted to
            base, base_psi, caption = pictures[start]["z"], 1.0, f"your picture {start} (ψ 1, as projected)"
            base_cls = cls if pictures[start]["class"] is None else pictures[start]["class"]
        # The method is read before the directions are computed, so the image never lags the radio.
        method = METHODS[linked(st.radio, "Directions", list(METHODS), key="method", horizontal=True,
                                help="SeFa: closed form, from the first layer's weights. GANSpace: PCA of "
                                     "early features over 2,000 random latents.")]
        d, variance = directions(*key, method)
        swap_in("directions", method, [f"{method}{i + 1}" for i in range(len(d))])
        sliders = st.columns(2)
        amounts = [shelved(linked, f"{method}{i + 1}", widget=sliders[i % 2].slider, label=f"Direction {i + 1}",
                           **EDIT, help=f"variance {variance[i]:.3g}; in standard deviations of z")
                   for i in range(len(d))]
        with st.expander("Raw latent dimensions and your directions"):
            dims = linked(st.multiselect, "Latent dimensions", list(range(G.z_dim)), key="dims")
            raw = {k: linked(st.slider, f"z[{k}]", key=f"z{k}", **EDIT) for k in dims}
            user = [(vector, linked(st.slider, plain(name), key=f"dir-{name}", **EDIT))
                    for name, vector in saved.items()]
        st.button("Reset edits", on_click=set_values, args=({k: 0.0 for k in edit_keys(G.z_dim, saved)},))
    image = latent.render_edit(G, base, d, amounts, raw, user, base_psi, base_cls)
    left.image(image, caption=caption, width="stretch")


editor()

# -- your picture ----------------------------------------------------------------------
with st.expander("Your picture in the latent space"):
    st.caption("Find the latent whose image comes closest to a picture of yours, then edit it like any seed: "
               "it becomes the editor's starting point and is saved in the run folder. Optimised from the best "
               "of 64 random seeds, on pixels and ImageNet features (a few seconds to half a minute at 64 px on a "
               "CPU). A generator can only draw what it learned: a picture unlike the training images comes "
               "back as the nearest thing it can draw.")
    source = st.radio("Picture", ["Upload", "A training image"], horizontal=True, key="proj-source", **KEPT)
    picture, label = None, ""
    if source == "Upload":
        upload = st.file_uploader("Your picture", type=["png", "jpg", "jpeg", "webp", "bmp", "gif"], key="proj-file")
        if upload is not None:
            try:
                picture, label = np.asarray(decode_image(upload.getvalue())), Path(upload.name).stem
            except UnusableImage as e:
                st.error(f"Cannot use this file: {sentence(e)}")
    elif (reals := real_images_of(str(run.path), stop=False)) is not None:
        index = st.number_input("Training image", 0, len(reals[0]) - 1, 0, key="proj-index", **KEPT)
        picture, label = reals[0][index], f"training-{index}"
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    steps = cols[2].slider("Steps", 50, 500, project.STEPS, 50, key="proj-steps", **KEPT,
                           help="more: closer, and slower")
    name = cols[2].text_input("Save as", value=label, key=f"proj-name-{label}", max_chars=project.MAX_NAME)
    saved = project.load_projections(run.path)
    if name.strip() == SEED:
        cols[2].error(f"'{SEED}' is the editor's other start: pick another name.")
    elif name.strip() in saved:
        cols[2].caption(f"Replaces your saved picture '{plain(name.strip())}'.")
    if picture is not None:
        cols[0].image(project.fitted(picture, G.res), caption="your picture", width="stretch")
        shown = cols[1].empty()
        if cols[2].button("Put it in the latent space", type="primary", disabled=name.strip() in ("", SEED)):
            bar = st.progress(0.0, text="trying 64 starting seeds…")

            def progress(step, total, preview, loss):
                bar.progress(step / total, text=f"step {step}/{total} · loss {loss:.3f}")
                if preview is not None:
                    shown.image(preview, caption=f"step {step}", width="stretch")
            try:
                result = project.project(G, picture, steps=steps, cls=cls, progress=progress)
                project.save_projection(run.path, name, result, source=label)
            except (ValueError, OSError, RuntimeError) as e:
                st.error(f"Cannot put it in the latent space: {sentence(e)}")
            else:
                set_on_next_run({"start": name.strip()})
                st.rerun()

# -- take images out ---------------------------------------------------------------
with st.expander("Make a set of images to use"):
    st.caption("PNG files named by seed, in one zip with settings.json: the seeds, ψ, class and checkpoint "
               "that make each image again (also from a terminal: python -m core.generate). Optionally "
               "without the images that the near-copy check flags (Real vs Fake).")
    cols = st.columns([2, 1, 1], vertical_alignment="bottom")
    seeds_text = cols[0].text_input("Seeds", "0-8", key="set-seeds", **KEPT, help="e.g. 0-8, or 3, 17, 40-45")
    sizes = [G.res, *(s for s in (128, 256, 512) if s > G.res)]
    size = cols[1].selectbox("Size", sizes, key="set-size", **KEPT, format_func=lambda v: f"{v} px")
    no_copies = cols[2].checkbox("Leave out likely copies", key="set-no-copies", **KEPT)
    try:
        wanted = generate.parse_seed_ranges(seeds_text)
        if len(wanted) > generate.MAX_IN_APP:
            raise ValueError(f"at most {generate.MAX_IN_APP} images per set here, where the zip is made in "
                             f"memory; for {len(wanted):,}: python -m core.generate --run checkpoints/{run.name} "
                             f"--seeds {seeds_text.strip()} --out FOLDER")
    except ValueError as e:
        st.error(sentence(e))
    else:
        if st.button(f"Make {len(wanted)} image{'s' * (len(wanted) != 1)} (ψ {psi:g})"):
            bar = st.progress(0.0, text="generating…")
            class_name = info["class_names"][cls] if cls is not None else None
            try:
                is_copy = evaluate.copy_check(run.path) if no_copies else None
                data, meta, preview = generate.zip_set(
                    generate.draw(G, wanted, psi=psi, cls=cls, size=size, is_copy=is_copy), len(wanted),
                    lambda kept, copies: generate.settings(f"checkpoints/{run.name}", path.name, net, step, kept, psi,
                                                           class_name, size, copies, no_copies),
                    progress=lambda done, total: bar.progress(done / total, text=f"{done}/{total} images"),
                    preview=PREVIEW)
            except (DataError, ValueError, OSError) as e:
                st.error(f"Cannot make the set: {sentence(e)}")
            else:
                st.session_state["image-set"] = (f"{run.name}-seeds-{wanted[0]}-{wanted[-1]}.zip", data, meta,
                                                 preview)
            bar.empty()
        if "image-set" in st.session_state:
            zip_name, data, meta, preview = st.session_state["image-set"]
            if meta["left_out_as_copies"]:
                st.info(f"Left out as likely copies: seeds {', '.join(map(str, meta['left_out_as_copies']))}.")
            if preview:
                more = len(meta["seeds"]) - len(preview)
                st.image(make_grid(np.stack(preview), columns=min(len(preview), PREVIEW)), width="stretch",
                         caption=f"and {more} more in the zip" if more else None)
            st.download_button(f"Download {len(meta['seeds'])} images (zip, {len(data) / 2**20:.1f} MiB)", data,
                               file_name=zip_name, mime="application/zip")

with st.expander("Use the generator elsewhere"):
    st.caption("The checkpoint's generator as one TorchScript file that samples with nothing but torch: "
               "`G = torch.jit.load('G.pt'); images = G(torch.randn(16, G.z_dim))` gives 16 images in [-1, 1] "
               "(conditional models take class indices as a second argument). Also: python -m core.export.")
    if st.button("Export the generator"):
        with st.spinner("Tracing the generator…"), tempfile.TemporaryDirectory() as tmp:
            try:
                standalone.export(path, Path(tmp) / "G.pt")
            except (ValueError, OSError, RuntimeError) as e:
                st.error(f"Cannot export this generator: {sentence(e)}")
            else:
                st.session_state["standalone"] = (str(path), mtime, (Path(tmp) / "G.pt").read_bytes())
    if st.session_state.get("standalone", (None, None))[:2] == (str(path), mtime):
        data = st.session_state["standalone"][2]
        st.download_button(f"Download G.pt ({len(data) / 2**20:.1f} MiB)", data,
                           file_name=f"{run.name}-{path.stem}-G.pt", mime="application/octet-stream")

# -- your own directions ------------------------------------------------------------
with st.expander("Make a direction from examples"):
    st.caption("Pick seeds from the grid that show more of something, and seeds that show less; the "
               "direction is the difference of their mean latents. It is saved in the run folder.")
    # Picks from earlier pages of the grid stay: collect examples while paging.
    def with_picked(key: str) -> list[int]:
        return sorted({*seeds, *(int(s) for s in st.session_state.get(key, []))})
    more = [int(s) for s in st.multiselect("More like these", with_picked("more"), key="more", **KEPT)]
    less = [int(s) for s in st.multiselect("Less like these", with_picked("less"), key="less", **KEPT)]
    name = st.text_input("Direction name", placeholder="e.g. rounder", key="direction-name", **KEPT)
    if st.button("Save direction"):
        try:
            vector = latent.direction_from_examples(latent.seed_latents(more, G.z_dim),
                                                    latent.seed_latents(less, G.z_dim))
            latent.save_direction(run.path, name, vector, note=f"more {more}, less {less}")
        except ValueError as e:
            st.error(sentence(e))
        else:
            st.success(f"Saved '{plain(name.strip())}': find its slider in the editor.")

# -- interpolation ---------------------------------------------------------------
st.subheader("Interpolation")
cols = st.columns([2, 1, 1])
text = linked(cols[0].text_input, "Keyframe seeds", "0, 1", key="keys", help="two or more, in order",
              check=lambda text: latent.parse_seeds(text, at_least=2))
mode = linked(cols[1].radio, "Path", ["slerp", "lerp"], key="mode", horizontal=True)
n_frames = linked(cols[2].slider, "Frames", 2, 32, 8, key="frames")
pictures = project.load_projections(run.path, G.z_dim, G.n_classes)
keep_valid("key-pictures", list(pictures))
then = st.multiselect("Then through your pictures", list(pictures), key="key-pictures", **KEPT,
                      help="pictures you put into the latent space, as more keyframes after the seeds")
try:
    keys = latent.parse_seeds(text, at_least=0 if len(then) >= 2 else 2 - len(then))
except ValueError as e:
    st.error(sentence(e))
else:
    keys = [*keys, *(tuple(pictures[name]["z"].tolist()) for name in then)]
    frames = interpolation(*key, tuple(keys), mode, n_frames, psi, cls)
    pick = st.slider("Frame", 1, len(frames), 1, key="frame", **KEPT)
    left, right = st.columns([1, 3])
    left.image(frames[pick - 1], caption=f"frame {pick} of {len(frames)}", width="stretch")
    right.image(make_grid(frames, columns=min(len(frames), 8)), width="stretch")
    a, b = st.columns(2)
    stem = f"{run.name}-{'-'.join(str(k) for k in keys if isinstance(k, int))}" + "-pictures" * bool(then)
    a.download_button("Download GIF", round_trip_gif(frames), file_name=f"{stem}.gif", mime="image/gif")
    b.download_button("Download PNG strip", png_bytes(make_grid(frames, columns=len(frames))),
                      file_name=f"{stem}.png", mime="image/png")
    cols = st.columns(3, vertical_alignment="bottom")
    side = cols[0].selectbox("Video size", VIDEO_SIDES, index=1, key="video-side", **KEPT,
                             format_func=lambda v: f"{v} px")
    fps = cols[1].slider("Frames per second", 4, 30, 12, key="video-fps", **KEPT)
    wanted = (stem, tuple(map(str, keys)), mode, n_frames, psi, cls, side, fps, str(path), mtime)
    if cols[2].button("Make an MP4 (there and back)"):
        bar = st.progress(0.0, text="encoding…")
        st.session_state["mp4"] = (wanted, video.mp4(video.round_trip(frames), fps, side, progress=lambda done, total:
                                                     bar.progress(done / total, text=f"frame {done}/{total}")))
        bar.empty()
    if st.session_state.get("mp4", (None,))[0] == wanted:
        data = st.session_state["mp4"][1]
        st.video(data, format="video/mp4", loop=True)
        st.download_button(f"Download MP4 ({len(data) / 1024:.0f} KiB)", data, file_name=f"{stem}.mp4",
                           mime="video/mp4")
