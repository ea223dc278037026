"""Data: import images (folder, upload, URL list), see what they are, curate a version to train on."""
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core import curate, dataimport, urlimport
from core.data import (FITS, DataError, Skipped, decode_image, fit_image, labels_of, load_image_set,
                       summarize_skipped)
from core.datasets import DataRegistry, DataSet, DataSetError
from core.grid import make_grid

st.set_page_config(page_title="Data · GANscope", page_icon="🔭", layout="wide")
st.title("Data")
st.caption("Bring your images in, look at them, and remove what doesn't belong before it costs hours of "
           "training. Imported files are copied and never changed; curation saves versions that the "
           "Training page offers.")

THUMB_RES, PAGE = 64, 48
registry = DataRegistry()
NEW = "➕ New data set"


@st.cache_data(max_entries=8, show_spinner="Loading thumbnails…")
def thumbnails(version_path: str, fit: str, mtime: float) -> tuple[np.ndarray, list[str]]:
    """The version's usable images at 64 px (cached on disk by content, so this is fast after once)."""
    images = load_image_set(version_path, THUMB_RES, fit)
    return images.images, images.names


@st.cache_data(max_entries=8, show_spinner="Looking for duplicates…")
def duplicate_groups(dataset_path: str, files: tuple, scan_mtime: float):
    """(exact, near) duplicate groups among a version's files; recomputed when the scan changes."""
    ds = DataSet(Path(dataset_path))
    infos = curate.load_scan(ds)
    listed = [infos[n] for n in files if n in infos]
    return curate.exact_duplicates(listed), curate.near_duplicates(listed, curate.file_opener(ds))


def scan_with_progress(ds) -> dict:
    bar = st.progress(0.0, text="Inspecting files…")
    infos = curate.scan(ds, lambda d, t: bar.progress(d / t, text=f"Inspecting files {d}/{t}"))
    bar.empty()
    return infos


def run_import(ds, how: str, payload) -> None:
    bar = st.progress(0.0, text="Importing…")
    progress = lambda d, t: bar.progress(d / t, text=f"Importing {d}/{t}")  # noqa: E731
    try:
        if how == "folder":
            result = dataimport.import_folder(ds, payload, progress)
        elif how == "upload":
            result = dataimport.import_uploads(ds, payload, progress)
        else:
            result = dataimport.import_urls(ds, payload, progress)
    except (DataSetError, DataError) as e:
        bar.empty()
        st.error(str(e))
        return
    bar.empty()
    st.session_state["import-result"] = (ds.name, len(result.added), result.skipped, result.version.number)
    st.session_state["select-dataset"] = ds.name
    st.rerun()


# -- which data set -----------------------------------------------------------------
sets = registry.all()
names = [d.name for d in sets]
# The choice starts from the link, and jumps to a data set just created by an import.
wanted = st.session_state.pop("select-dataset", None) or st.session_state.get("dataset")
if wanted is None and "dataset" not in st.session_state:
    wanted = st.query_params.get("set", names[0] if names else NEW)
if wanted is not None:
    st.session_state["dataset"] = wanted if wanted in names else NEW
with st.sidebar:
    choice = st.selectbox("Data set", names + [NEW], key="dataset")
ds = registry.get(choice) if choice != NEW else None
if ds:
    st.query_params["set"] = ds.name
else:
    st.query_params.pop("set", None)

tab_import, tab_report, tab_curate = st.tabs(["Import", "Report", "Curate"])

# -- Import ---------------------------------------------------------------------------
with tab_import:
    if (done := st.session_state.pop("import-result", None)) is not None:
        set_name, added, skipped, version = done
        st.success(f"Added {added} image{'s' * (added != 1)} to {set_name} (now version v{version}).")
        if skipped:
            with st.expander(summarize_skipped([Skipped(n, r) for n, r in skipped]), expanded=added == 0):
                st.dataframe([{"file": n, "reason": r} for n, r in skipped], hide_index=True, width="stretch")
    if ds is None:
        set_name = st.text_input("Name of the new data set", placeholder="book-covers",
                                 help="Letters, digits, '.', '_' or '-'.")
    else:
        set_name = ds.name
        st.caption(f"Importing into **{ds.name}**. Pick “{NEW}” in the sidebar to start another data set.")
    how = st.radio("From", ["folder", "upload", "urls"], horizontal=True, format_func={
        "folder": "A folder on this machine", "upload": "Upload images or a zip", "urls": "A list of URLs"}.get)
    payload = None
    if how == "folder":
        folder = st.text_input("Folder path", placeholder="/home/me/pictures/covers",
                               help="Searched recursively; first-level subfolders become classes.")
        payload = folder.strip() or None
    elif how == "upload":
        files = st.file_uploader("Images, or zips of images", accept_multiple_files=True,
                                 type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "zip"])
        payload = [(f.name, f.getvalue()) for f in files] if files else None
    else:
        text = st.text_area("URLs, one per line (or CSV with a url column)", height=120)
        listing = st.file_uploader("…or a .txt / .csv file of URLs", type=["txt", "csv"])
        if listing is not None:
            text += "\n" + listing.getvalue().decode("utf-8", errors="replace")
        urls = urlimport.parse_url_list(text)
        payload = urls or None
        st.caption(f"{len(urls)} URL{'s' * (len(urls) != 1)} found. Downloads use 4 connections, 15 s "
                   f"timeouts, at most {urlimport.MAX_IMAGE_BYTES // 2**20} MB per image; a second import "
                   "of the same list only fetches what is missing.")
    if st.button("Import", type="primary"):
        if payload is None:
            st.error({"folder": "Enter the path of a folder of images.", "upload": "Choose files to upload.",
                      "urls": "Paste or upload a list of http(s) URLs."}[how])
        else:
            try:
                target = ds or registry.create(set_name, how)
            except DataSetError as e:
                st.error(str(e))
            else:
                run_import(target, how, payload)

if ds is None:
    for tab in (tab_report, tab_curate):
        tab.info("Import images first, or pick a data set in the sidebar.")
    st.stop()

versions = ds.versions()
if not versions:
    for tab in (tab_report, tab_curate):
        tab.info("This data set has no images yet: import some.")
    st.stop()
infos = scan_with_progress(ds)

# -- Report ----------------------------------------------------------------------------
with tab_report:
    rep = curate.report(list(infos.values()))
    skipped_on_import = [s for imp in ds.meta["imports"] for s in imp["skipped"]]
    cols = st.columns(5)
    cols[0].metric("Files", rep["files"])
    cols[1].metric("Usable images", rep["usable"])
    cols[2].metric("Skipped or broken", len(rep["broken"]) + len(skipped_on_import),
                   help="skipped at import, or broken in the data set's folder")
    cols[3].metric("Size", f"{rep['bytes'] / 2**20:.1f} MB")
    cols[4].metric("Square", f"{rep['square']} / {rep['usable']}")
    st.caption("Formats: " + ", ".join(f"{fmt} {n}" for fmt, n in rep["formats"]) +
               f" · smallest side {rep['smallest']} px · versions: " + ", ".join(f"v{v.number}" for v in versions))
    if rep["usable"]:
        left, right = st.columns(2)
        sizes = go.Figure(go.Scattergl(x=rep["widths"], y=rep["heights"], mode="markers", opacity=0.5))
        sizes.update_layout(title="Image sizes (px)", xaxis_title="width", yaxis_title="height", height=320,
                            margin=dict(l=10, r=10, t=40, b=10))
        left.plotly_chart(sizes)
        aspects = go.Figure(go.Histogram(x=rep["aspects"], nbinsx=40))
        aspects.update_layout(title="Aspect ratio (width / height)", height=320, margin=dict(l=10, r=10, t=40, b=10))
        right.plotly_chart(aspects)
    if rep["broken"] or skipped_on_import:
        with st.expander(f"Broken or skipped files ({len(rep['broken']) + len(skipped_on_import)})"):
            st.dataframe([{"file": n, "reason": r} for n, r in rep["broken"]] +
                         [{"file": s.split(": ", 1)[0], "reason": s.split(": ", 1)[-1]} for s in skipped_on_import],
                         hide_index=True, width="stretch")
    version = versions[-1]
    images, image_names = thumbnails(str(version.path), version.fit, version.path.stat().st_mtime)
    pages = max(1, -(-len(images) // PAGE))
    page = st.number_input(f"Preview of v{version.number}: page (of {pages})", 1, pages, 1) - 1
    st.image(make_grid(images[page * PAGE:(page + 1) * PAGE], columns=12), width="stretch")

# -- Curate ------------------------------------------------------------------------------
with tab_curate:
    version_labels = {v.number: v.label for v in versions}
    base_number = st.selectbox("Start from", list(version_labels), index=len(versions) - 1,
                               format_func=version_labels.get)
    base = next(v for v in versions if v.number == base_number)
    state_key = f"exclude:{ds.name}:{base.number}"
    exclude: set = st.session_state.setdefault(state_key, set())
    by_name = {n: infos[n] for n in base.files if n in infos}

    def drop(names_to_drop, why):
        exclude.update(names_to_drop)
        for name in names_to_drop:  # the hand-picking checkboxes below must agree
            st.session_state[f"keep:{state_key}:{name}"] = False
        st.toast(f"Excluded {len(names_to_drop)} {why}")

    st.subheader("Duplicates")
    exact, near = duplicate_groups(str(ds.path), tuple(base.files), (ds.path / curate.SCAN_FILE).stat().st_mtime)
    thumbs, thumb_names = thumbnails(str(base.path), base.fit, base.path.stat().st_mtime)
    index = {n: i for i, n in enumerate(thumb_names)}
    for title, groups in (("identical files", exact), ("near duplicates (same picture, other file)", near)):
        open_groups = [g for g in groups if sum(n not in exclude for n in g) > 1]
        if not open_groups:
            st.caption(f"No {title}.")
            continue
        st.write(f"**{len(open_groups)} group{'s' * (len(open_groups) != 1)} of {title}**")
        for group in open_groups[:8]:
            shown = [n for n in group if n in index]
            if shown:
                st.image(make_grid(thumbs[[index[n] for n in shown]], columns=len(shown)),
                         caption=" · ".join(shown), width=80 * len(shown))
        extra = curate.keep_one(open_groups, by_name)
        if st.button(f"Exclude {len(extra)} (keep the largest of each group)", key=f"dedupe-{title}"):
            drop(extra, title)
            st.rerun()

    st.subheader("Outliers")
    st.caption("Images ranked by their distance to their 5 nearest neighbours in EfficientNet-Lite0 feature "
               "space: the ones that don't look like the rest come first.")
    ranking_key = f"outliers:{base.path}:{base.path.stat().st_mtime}"
    if ranking_key not in st.session_state and st.button("Rank outliers"):
        bar = st.progress(0.0, text="Embedding images…")
        st.session_state[ranking_key] = curate.outlier_ranking(
            base.path, base.fit, progress=lambda d, t: bar.progress(d / t, text=f"Embedding images {d}/{t}"))
        bar.empty()
    if ranking_key in st.session_state:
        ranking = [(n, s) for n, s in st.session_state[ranking_key] if n not in exclude]
        top = len(ranking) if len(ranking) <= 4 else st.slider("Show the top", 4, min(96, len(ranking)),
                                                                min(24, len(ranking)))
        st.image(make_grid(thumbs[[index[n] for n, _ in ranking[:top]]], columns=12), width="stretch",
                 caption="most unusual first: " + ", ".join(f"{n} ({s:.1f})" for n, s in ranking[:6]) + "…")
        if st.button(f"Exclude these {min(top, len(ranking))}"):
            drop([n for n, _ in ranking[:top]], "outliers")
            st.rerun()

    st.subheader("Classes")
    labels, classes = labels_of(base.files)
    class_of = dict(zip(base.files, [classes[i] for i in labels])) if classes else {}
    if classes:
        keep_classes = st.multiselect("Keep classes", classes, default=classes)
    else:
        keep_classes = []
        st.caption("No classes: put images in one subfolder per class to get them.")

    st.subheader("Pick by hand")
    pages = max(1, -(-len(thumb_names) // PAGE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key="curate-page") - 1
    columns = st.columns(12)
    for k, name in enumerate(thumb_names[page * PAGE:(page + 1) * PAGE]):
        col = columns[k % 12]
        col.image(thumbs[index[name]], width="stretch")
        key = f"keep:{state_key}:{name}"
        st.session_state.setdefault(key, name not in exclude)  # (a value= as well would make Streamlit warn)
        kept = col.checkbox("keep", key=key, help=name)
        (exclude.discard if kept else exclude.add)(name)

    st.subheader("Save a version")
    fit = st.radio("Crop mode", FITS, index=FITS.index(base.fit), horizontal=True,
                   help="crop: fill the square and cut the overflow · pad: fit inside with white bars · "
                        "squash: stretch")
    sample = [fit_image(decode_image((ds.files_dir / n).read_bytes()), THUMB_RES, fit) for n in thumb_names[:8]]
    st.image(make_grid(np.stack(sample), columns=8), caption=f"{fit}, as training will see them", width=8 * 80)
    usable = [n for n in base.files if n in index]
    dropped_classes = {n for n in usable if n not in exclude and classes and class_of[n] not in keep_classes}
    final = [n for n in usable if n not in exclude and n not in dropped_classes]
    st.write(f"**{len(final)}** of {len(base.files)} images kept ({len(base.files) - len(usable)} broken, "
             f"{len(exclude & set(usable))} excluded, {len(dropped_classes)} in dropped classes).")
    note = st.text_input("Note", placeholder="no duplicates, no text-heavy covers")
    if st.button(f"Save as v{versions[-1].number + 1}", type="primary", disabled=not final):
        saved = ds.save_version(final, fit, note=note.strip())
        st.session_state.pop(state_key, None)
        st.success(f"Saved v{saved.number} with {len(saved.files)} images. Train on it from the Training page.")
        time.sleep(0.5)
        st.rerun()
