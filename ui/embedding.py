"""Feature extraction with a progress bar, cached on disk (core.features) and per session."""
import os

import numpy as np
import streamlit as st
import torch

from core import features
from core.data.sources import DataError
from core.evaluation import evaluate
from core.runs.runfolder import RunFolder
from ui.pickers import registry
from ui.text import sentence


def share_cpu_with_training() -> None:
    """Use only the cores that CPU training runs leave free: oversubscribed cores make
    feature extraction ~20x slower (2 vs 50 img/s measured with one trainer running)."""
    busy = sum(r.config.get("threads") or 1 for r in registry().runs()
               if r.active and r.config.get("device", "auto") != "cuda")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) - busy))


@st.cache_data(max_entries=8, show_spinner="Loading the training images…")
def _real_images_of(run_path: str):
    images = evaluate.real_images(RunFolder(run_path))
    return images.images, images.labels, images.class_names, images.key


@st.cache_data(max_entries=8, show_spinner="Loading the held-out images…")
def _held_out_of(run_path: str):
    held = evaluate.held_out_images(RunFolder(run_path))
    return None if held is None else (held.images, held.key)


def held_out_of(run_path: str):
    """The images the run kept back from training (images, data key), or None when it kept none."""
    try:
        return _held_out_of(run_path)
    except (DataError, OSError):  # real_images_of says why the data cannot be read
        return None


def real_images_of(run_path: str, stop: bool = True):
    """The run's training images (images, labels, class names, data key), or a clear message
    (not a traceback) when they are gone or can no longer be read: then the page stops there,
    or with stop=False, goes on without them (None)."""
    try:
        return _real_images_of(run_path)
    except (DataError, OSError) as e:  # the message may quote file names: shown escaped
        st.error(f"The images this run trained on cannot be loaded: {sentence(e)}")
        if stop:
            st.stop()
        return None


@st.cache_data(max_entries=16, show_spinner="Generating images…")
def fake_images_of(path: str, mtime: float, n: int, seed: int, _G, _labels):
    """Generated images for a checkpoint file version (G and labels are not hashed: path+mtime is the key)."""
    return evaluate.fake_images(_G, n, seed=seed, labels=_labels)


def real_features(key: str, images: np.ndarray, name: str = "efficientnet") -> np.ndarray:
    """The data set's features: computed once per data set on disk, then kept in the session."""
    cache = st.session_state.setdefault("real-features", {})
    if (key, name) not in cache:
        share_cpu_with_training()
        bar = st.progress(0.0, text="Embedding the training images (once per data set)…")
        cache[(key, name)] = features.cached_features(
            key, lambda: images, name, lambda d, t: bar.progress(d / t, text=f"Embedding real images {d}/{t}"))
        bar.empty()
    return cache[(key, name)]


def fake_features(path: str, mtime: float, images: np.ndarray, name: str = "efficientnet") -> np.ndarray:
    """Features of a checkpoint's generated images, kept in the session per file version and count."""
    cache = st.session_state.setdefault("fake-features", {})
    key = (path, mtime, len(images), name)
    if key not in cache:
        share_cpu_with_training()
        bar = st.progress(0.0, text="Embedding generated images…")
        cache[key] = features.extract(images, name, progress=lambda d, t: bar.progress(
            d / t, text=f"Embedding generated images {d}/{t}"))
        bar.empty()
    return cache[key]
