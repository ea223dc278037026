"""Map: real and generated images on one 2-D map (UMAP fitted on the real images, or PCA)."""
import html

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.evaluation import embedmap
from core.grid import make_grid
from ui.embedding import fake_features, fake_images_of, real_features, real_images_of
from ui.guard import local_only
from ui.links import linked, notice
from ui.pickers import checkpoint_names, load_or_stop, pick_trained_run
from ui.state import keep_valid

st.set_page_config(page_title="Map · GANscope", page_icon="🔭", layout="wide")
local_only()  # refuses to work when the app listens beyond this machine uninvited
st.title("Map")
st.caption("Each dot is an image, placed by its EfficientNet-Lite0 features. The map is fitted on the real "
           "images once; generated images are projected onto it, so checkpoints can be compared on the same "
           "map. Select points (box or lasso) to see them.")
notice()

REAL_SIZES, FAKE_SIZES = [250, 500, 1000, 2000, 4000], [100, 250, 500, 1000, 2000]


@st.cache_resource(max_entries=4, show_spinner="Fitting the map on the real images (once per data set and size)…")
def real_map(key: str, n: int, method: str, _feats) -> embedmap.RealMap:
    return embedmap.fit_real_map(_feats, method)


run = pick_trained_run()
real_images, real_labels, class_names, data_key = real_images_of(str(run.path))
# Sizes up to the data set's own: a 300-image set offers 250 and "all 300", never 2,000.
real_sizes = [n for n in REAL_SIZES if n < len(real_images)] + [len(real_images)]
with st.sidebar:
    ckpts = checkpoint_names(run)
    keep_valid("ckpts", ckpts, ckpts[:1])
    chosen = linked(st.multiselect, "Checkpoints", ckpts, default=ckpts[:1], key="ckpts",
                    help="Several snapshots show the fakes moving onto the data over training.")
    method = linked(st.radio, "Map", ["UMAP", "PCA"], horizontal=True, key="map",
                    help="UMAP keeps neighbourhoods (a first fit takes a while); PCA is instant.").lower()
    keep_valid("real", real_sizes, real_sizes[-1])
    n_real = linked(st.select_slider, f"Real images (of {len(real_images)})", real_sizes,
                    value=2000 if 2000 in real_sizes else real_sizes[-1], key="real")
    n_fake = linked(st.select_slider, "Generated per checkpoint", FAKE_SIZES, value=500, key="fake")
    colour = linked(st.radio, "Colour by", ["source", "class"], horizontal=True, key="colour")

feats = real_features(data_key, real_images)
sample = np.random.default_rng(0).permutation(len(real_images))[:n_real]
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
        # Plotly draws a subset of HTML in legends (<a href> is a link): class names are folder names.
        groups = [(f"{source} · {html.escape(class_names[c])}", np.flatnonzero(labels == c))
                  for c in np.unique(labels)]
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
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"), key="map-chart")

selected = event.selection.points if event and event.selection else []
if selected:
    by_source = {source: images for source, images, *_ in points}
    picked: dict[str, list] = {}
    for p in selected:
        source, index = (p.get("customdata") or [None, None])[:2]
        if source in by_source:
            picked.setdefault(source, []).append(by_source[source][int(index)])
    st.subheader(f"{len(selected)} selected")
    for source, images in picked.items():  # real first, then each checkpoint's fakes
        label = "real images" if source == "real" else f"generated by {source}"
        st.caption(f"{len(images)} {label}" + (" (first 64 shown)" if len(images) > 64 else ""))
        st.image(make_grid(np.stack(images[:64]), columns=16), width="stretch")
else:
    st.caption("Tip: drag a lasso around a cluster to see its images.")
