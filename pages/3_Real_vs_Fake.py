"""Real vs Fake: side by side, nearest real image of each fake, a copying test, a blind quiz, quality metrics."""
import random

import numpy as np
import streamlit as st

from core.evaluation import copying, evaluate, metrics
from core.grid import make_grid
from ui import monitor
from ui.embedding import (
    fake_features,
    fake_images_of,
    held_out_of,
    real_features,
    real_images_of,
    share_cpu_with_training,
)
from ui.guard import local_only
from ui.links import linked, notice
from ui.pickers import load_or_stop, pick_run_and_checkpoint
from ui.state import keep_valid, set_values
from ui.text import plain

st.set_page_config(page_title="Real vs Fake · GANscope", page_icon="🔭", layout="wide")
local_only()  # refuses to work when the app listens beyond this machine uninvited
st.title("Real vs Fake")
notice()

run, path = pick_run_and_checkpoint()
G, info = load_or_stop(path)
mtime = path.stat().st_mtime


@st.cache_data(max_entries=8, show_spinner="Calibrating the near-copy check…")
def copy_reference(key: str, _train, _held) -> copying.CopyReference:
    return copying.CopyReference.build(_train, _held)


real_images, real_labels, class_names, data_key = real_images_of(str(run.path))
with st.sidebar:
    count = linked(st.select_slider, "Images per side", [8, 16, 32, 64], value=32, key="count")
    cls = None
    if class_names and info["class_names"]:
        keep_valid("compare-class", ["all"] + class_names, "all")
        choice = linked(st.selectbox, "Class", ["all"] + class_names, key="compare-class")
        cls = None if choice == "all" else class_names.index(choice)
    st.button("Reshuffle", on_click=lambda: set_values({"shuffle": random.randrange(1_000_000)}))
shuffle = st.session_state.get("shuffle", 0)

fakes, fake_classes = fake_images_of(str(path), mtime, 512, shuffle, G, real_labels)
rng = np.random.default_rng(shuffle)
real_pool = np.arange(len(real_images)) if cls is None or real_labels is None else np.flatnonzero(real_labels == cls)
fake_pool = np.arange(len(fakes)) if cls is None or fake_classes is None else np.flatnonzero(fake_classes == cls)
real_pick = rng.choice(real_pool, size=min(count, len(real_pool)), replace=False)
fake_pick = fake_pool[:count]


def side_by_side():
    left, right = st.columns(2)
    columns = 8 if count >= 32 else 4
    left.image(make_grid(real_images[real_pick], columns=columns), caption=f"{len(real_pick)} real images",
               width="stretch")
    right.image(make_grid(fakes[fake_pick], columns=columns), caption=f"{len(fake_pick)} generated images",
                width="stretch")


def nearest_real():
    st.caption("For each generated image, its three nearest training images in EfficientNet-Lite0 feature "
               "space, closest first. A generated image is flagged as a likely copy when it comes closer to a "
               "training image (measured against that image's own nearest neighbour) than all but 2% of new "
               "real images of the same kind do: the run's held-out images, or for a run without them, each "
               "training image to the others. With small data sets, a GAN that memorises shows up here first.")
    feats = real_features(data_key, real_images)
    held = held_out_of(str(run.path))
    held_feats = None if held is None else real_features(held[1], held[0])
    reference = copy_reference(f"{data_key}|{held and held[1]}", feats, held_feats)
    fake_feats = fake_features(f"{path}#{shuffle}", mtime, fakes[fake_pick])
    idx, dist = metrics.nearest(feats, fake_feats, k=3)
    flags = reference.flags(fake_feats)
    order = np.argsort(dist[:, 0])
    (st.warning if flags.any() else st.success)(
        f"{int(flags.sum())} of {len(fake_pick)} generated images are likely near-copies of training images "
        f"(calibrated on the {reference.reference} images).")
    for row in order[: min(16, len(order))]:
        cols = st.columns([1, 1, 1, 1, 2])
        cols[0].image(fakes[fake_pick][row], caption="generated", width="stretch")
        for j in range(3):
            cols[j + 1].image(real_images[idx[row, j]], caption=f"d = {dist[row, j]:.2f}", width="stretch")
        if flags[row]:
            cols[4].error("likely copy")


def copying_test():
    st.caption("Is the generator copying its training images, as a whole? Three numbers on EfficientNet-Lite0 "
               "features of many generated images, computed on demand and saved in the run folder. **Near-copies**: "
               "the share flagged as in *Nearest real image* (about 2% for new images). **Authenticity** (Alaa et "
               "al. 2022): the share of generated images that are no closer to their nearest training image than "
               "that image's own nearest neighbour is; compare it with the held-out images' own share. **C_T** "
               "(Meehan et al. 2020): per region of the data, are generated images closer to the training images "
               "than held-out images are? Near 0: like new images; below -3: copying; above 3: not yet as close "
               "to your images as new ones (an undertrained generator).")
    n = linked(st.select_slider, "Generated images", [250, 500, 1000, 2000], value=1000, key="copy-n")
    if st.button(f"Test {path.name} for copying"):
        share_cpu_with_training()
        bar, eta = st.progress(0.0, text="starting…"), monitor.Eta()
        try:
            evaluate.copying_report(run.path, path.name, n=n, progress=lambda f, t: bar.progress(
                min(f, 1.0), text=f"{t} · {eta.text(f)}"))
        except ValueError as e:
            st.error(plain(e))
        bar.empty()
    saved = evaluate.load_copying(run.path)
    if path.name in saved:  # this checkpoint's last test, in words
        result = saved[path.name]
        st.markdown(f"**{plain(path.name)}**, {result['n_fake']} generated images:")
        for line in evaluate.copying_in_words(result):
            st.markdown(f"- {plain(line)}")
    if saved:
        st.dataframe([{"checkpoint": name, "kimg": round(r["kimg"], 1), "images": r["n_fake"],
                       "near-copies": f"{r['near_copies']:.1%}", "authenticity": f"{r['authenticity']:.2f}",
                       "held-out authenticity": "" if r["authenticity_held_out"] is None else
                       f"{r['authenticity_held_out']:.2f}",
                       "C_T": "" if r["c_t"] is None else f"{r['c_t']:.2f}"}
                      for name, r in sorted(saved.items(), key=lambda kv: kv[1]["kimg"])],
                     hide_index=True, width="stretch")


def quiz():
    st.caption("Which one is real? Pairs of one training image and one generated image, in random order.")
    state = st.session_state.setdefault("quiz", {"ckpt": None, "round": 0, "correct": 0})
    if state["ckpt"] != str(path):
        state.update(ckpt=str(path), round=0, correct=0)
    q_rng = np.random.default_rng(state["round"] + 1000 * shuffle)
    real_i, fake_i, real_left = q_rng.integers(len(real_images)), q_rng.integers(len(fakes)), q_rng.random() < 0.5
    pair = [real_images[real_i], fakes[fake_i]] if real_left else [fakes[fake_i], real_images[real_i]]
    a, b = st.columns(2)
    a.image(pair[0], width=256)
    b.image(pair[1], width=256)
    answer = None
    if a.button("Left is real"):
        answer = True
    if b.button("Right is real"):
        answer = False
    if answer is not None:
        correct = answer == real_left
        state["round"] += 1
        state["correct"] += int(correct)
        evaluate.record_quiz(run.path, path.name, int(correct), 1)
        st.toast("Right!" if correct else "Wrong: that one was generated.")
        st.rerun()
    if state["round"]:
        st.metric("Your score this session", f"{state['correct']} / {state['round']}")
    saved = evaluate.load_quiz(run.path).get(path.name)
    if saved:
        st.caption(f"All answers for this checkpoint: {saved['total']}, human error rate "
                   f"{saved['error_rate']:.0%} (50% = people cannot tell).")


def quality_metrics():
    st.caption("FID and KID (lower is better) compare Inception features of real and generated images; "
               "precision / density say how realistic the fakes are, recall / coverage how much of the data "
               "they cover. Computed on demand and saved in the run folder. The first evaluation of a run also "
               "scores its two references (an untrained generator, and your images against themselves), so "
               "every number has a scale.")
    n = linked(st.select_slider, "Generated images", [100, 250, 500, 1000, 2000], value=1000, key="eval-n")
    saved = evaluate.load_evaluations(run.path)
    if st.button(f"Evaluate {path.name}"):
        share_cpu_with_training()
        bar, eta = st.progress(0.0, text="starting…"), monitor.Eta()
        result = evaluate.evaluate(run.path, path.name, n=n,
                                   progress=lambda f, t: bar.progress(min(f, 1.0), text=f"{t} · {eta.text(f)}"))
        bar.empty()
        st.success(f"FID {result['fid']:.1f}, KID {result['kid'] * 1000:.2f} ± {result['kid_se'] * 1000:.2f} ×10⁻³")
        for line in evaluate.in_context(result, evaluate.load_reference(run.path), list(saved.values())):
            st.markdown(f"- {plain(line)}")
        saved = evaluate.load_evaluations(run.path)
    quiz_scores = evaluate.load_quiz(run.path)
    if saved:
        st.dataframe([{"checkpoint": name, "kimg": round(r["kimg"], 1), "images": r["n_fake"],
                       "FID": round(r["fid"], 2), "KID ×10³": f"{r['kid'] * 1000:.2f} ± {r['kid_se'] * 1000:.2f}",
                       "precision": round(r["precision"], 3), "recall": round(r["recall"], 3),
                       "density": round(r["density"], 3), "coverage": round(r["coverage"], 3),
                       "human error": (f"{quiz_scores[name]['error_rate']:.0%}" if name in quiz_scores else "")}
                      for name, r in saved.items()], hide_index=True, width="stretch")
        references = evaluate.load_reference(run.path)
        if references:
            st.caption("References: " + "; ".join(
                f"{plain(k)} images: untrained FID {r['untrained']['fid']:.1f} / "
                f"KID {r['untrained']['kid'] * 1000:.1f}, "
                f"real vs real FID {r['real_vs_real']['fid']:.1f} / KID {r['real_vs_real']['kid'] * 1000:.1f} ×10⁻³"
                for k, r in sorted(references.items(), key=lambda kv: int(kv[0]))))


TABS = {"Side by side": side_by_side, "Nearest real image": nearest_real, "Copying test": copying_test, "Quiz": quiz,
        "Metrics": quality_metrics}
# Only the open tab runs (the tabs keep their state): embedding for the nearest-image check waits
# until someone looks at it.
for tab, draw in zip(linked(st.tabs, list(TABS), key="compare-tab"), TABS.values()):
    if tab.open:
        with tab:
            draw()
