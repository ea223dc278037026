"""Map: real and generated images on one 2-D map (UMAP fitted on the real images, or PCA)."""
import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import embedmap
from core.grid import make_grid
from ui.embedding import fake_features, fake_images_of, real_features, real_images_of
from ui.pickers import checkpoint_names, load_or_stop, runs_with_checkpoints

st.set_page_config(page_title="Map · GANscope", page_icon="🔭", layout="wide")
st.title("Map")
st.caption("Each dot is an image, placed by its EfficientNet-Lite0 features. The map is fitted on the real "
           "images once; generated images are projected onto it, so checkpoints can be compared on the same "
           "map. Select points (box or lasso) to see them.")

runs = runs_with_checkpoints()
if not runs:
    st.info("No trained generator yet: start a run on the Training page.")
    st.stop()
names = [r.name for r in runs]
REAL_SIZES, FAKE_SIZES = [250, 500, 1000, 2000, 4000], [100, 250, 500, 1000, 2000]


def from_url(key, options, default):
    """A setting from the link (so a map can be shared), if it is one of the options."""
    value = st.query_params.get(key)
    return next((o for o in options if str(o) == value), default)


with st.sidebar:
    default = from_url("run", names, "demo-emoji" if "demo-emoji" in names else names[0])
    run = runs[names.index(st.selectbox("Run", names, index=names.index(default)))]
    ckpts = checkpoint_names(run)
    chosen = st.multiselect("Checkpoints", ckpts, default=ckpts[:1],
                            help="Several snapshots show the fakes moving onto the data over training.")
    method = st.radio("Map", ["umap", "pca"], horizontal=True, index=["umap", "pca"].index(from_url(
        "map", ["umap", "pca"], "umap")), format_func={"umap": "UMAP", "pca": "PCA (instant)"}.get)
    n_real = st.select_slider("Real images", REAL_SIZES, value=from_url("real", REAL_SIZES, 2000))
    n_fake = st.select_slider("Generated per checkpoint", FAKE_SIZES, value=from_url("fake", FAKE_SIZES, 500))
    colour = st.radio("Colour by", ["source", "class"], horizontal=True)
st.query_params.from_dict({"run": run.name, "map": method, "real": str(n_real), "fake": str(n_fake)})

real_images, real_labels, class_names, data_key = real_images_of(str(run.path))
feats = real_features(data_key, real_images)
sample = np.random.default_rng(0).permutation(len(real_images))[:n_real]


@st.cache_resource(max_entries=4, show_spinner="Fitting the map on the real images (once per data set and size)…")
def real_map(key: str, n: int, method: str, _feats) -> embedmap.RealMap:
    return embedmap.fit_real_map(_feats, method)


rmap = real_map(data_key, len(sample), method, feats[sample])
points = [("real", real_images[sample], rmap.coords, real_labels[sample] if real_labels is not None else None,
           np.zeros(len(sample)))]
for name in chosen:
    path = run.folder.checkpoints / name
    G, info = load_or_stop(path)
    mtime = path.stat().st_mtime
    fakes, classes = fake_images_of(str(path), mtime, n_fake, 0, G, real_labels)
    coords, nearest = embedmap.project(rmap, fake_features(str(path), mtime, fakes))
    points.append((name, fakes, coords, classes, nearest))

fig = go.Figure()
for source, images, coords, labels, nearest in points:
    is_real = source == "real"
    groups = [(source, np.arange(len(images)))]
    if colour == "class" and labels is not None and class_names:
        groups = [(f"{source} · {class_names[c]}", np.flatnonzero(labels == c)) for c in np.unique(labels)]
    for label, idx in groups:
        fig.add_trace(go.Scattergl(
            x=coords[idx, 0], y=coords[idx, 1], mode="markers", name=label,
            marker=dict(size=4 if is_real else 6, opacity=0.45 if is_real else 0.85,
                        color="#9aa0a6" if is_real and colour == "source" else None,
                        symbol="circle" if is_real else "diamond"),
            customdata=np.stack([np.full(len(idx), source, dtype=object), idx, nearest[idx]], axis=1),
            hovertemplate=("%{customdata[0]} #%{customdata[1]}" +
                           ("" if is_real else "<br>distance to nearest real: %{customdata[2]:.2f}") +
                           "<extra></extra>")))
fig.update_layout(height=640, margin=dict(l=10, r=10, t=10, b=10), dragmode="lasso",
                  legend=dict(orientation="h"), xaxis=dict(showticklabels=False), yaxis=dict(showticklabels=False))
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key="map")

selected = event.selection.points if event and event.selection else []
if selected:
    by_source = {source: images for source, images, *_ in points}
    picked = [by_source[p["customdata"][0]][int(p["customdata"][1])] for p in selected[:64]
              if p.get("customdata") and p["customdata"][0] in by_source]
    if picked:
        st.subheader(f"{len(selected)} selected" + (" (first 64 shown)" if len(selected) > 64 else ""))
        st.image(make_grid(np.stack(picked), columns=16), width="stretch")
else:
    st.caption("Tip: drag a lasso around a cluster to see its images.")
