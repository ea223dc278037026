"""Data: import images (folder, upload, URL list), see what they are, curate a version to train on."""
import time
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.data import curate, importer, urlimport
from core.data.datasets import SKIPS_KEPT, DataRegistry, DataSet, DataSetError, runs_using
from core.data.images import FITS
from core.data.imageset import DataError, Skipped, class_names_of, load_image_set, summarize_skipped
from core.grid import make_grid
from ui.guard import local_only
from ui.links import linked, notice
from ui.pickers import registry as run_registry
from ui.state import KEPT, apply_pending, keep_valid, set_on_next_run
from ui.text import plain, sentence

st.set_page_config(page_title="Data · GANscope", page_icon="🔭", layout="wide")
local_only()  # refuses to work when the app listens beyond this machine uninvited
st.title("Data")
notice()
st.caption("Bring your images in, look at them, and remove what doesn't belong before it costs hours of "
           "training. Imported files are copied and never changed; curation saves versions that the "
           "Training page offers.")

THUMB_RES, PAGE, PICK_COLUMNS = 64, 48, 8
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
    return curate.duplicate_groups(DataSet(Path(dataset_path)), list(files))


def scan_with_progress(ds) -> dict:
    bar = st.progress(0.0, text="Inspecting files…")
    infos = curate.scan(ds, lambda d, t: bar.progress(d / t, text=f"Inspecting files {d}/{t}"))
    bar.empty()
    return infos


def run_import(ds, set_name: str, how: str, payload) -> None:
    """Import into `ds`, or into a new data set `set_name` that exists only if the import brought images."""
    bar = st.progress(0.0, text="Importing…")
    progress = lambda d, t: bar.progress(d / t, text=f"Importing {d}/{t}")  # noqa: E731
    try:
        if ds is None:
            result = importer.import_new(registry, set_name, how, payload, progress)
        else:
            result = importer.IMPORTS[how](ds, payload, progress)
    except (DataSetError, DataError) as e:
        bar.empty()
        st.error(sentence(e))
        return
    bar.empty()
    name = set_name if ds is None else ds.name
    st.session_state["import-result"] = (name, len(result.added), result.skipped, result.version.number)
    set_on_next_run({"set": name})
    st.rerun()


# -- which data set -----------------------------------------------------------------
sets = registry.all()
names = [d.name for d in sets]
apply_pending()  # a data set just created or deleted, a version just saved
keep_valid("set", names + [NEW], NEW)
with st.sidebar:
    choice = linked(st.selectbox, "Data set", names + [NEW], index=0 if names else len(names), key="set")
ds = registry.get(choice) if choice != NEW else None

tab_import, tab_report, tab_curate = linked(st.tabs, ["Import", "Report", "Curate"], key="data-tab")

# -- Import ---------------------------------------------------------------------------
if tab_import.open:
    with tab_import:
        if (done := st.session_state.pop("import-result", None)) is not None:
            set_name, added, skipped, version = done
            st.success(f"Added {added} image{'s' * (added != 1)} to {plain(set_name)} (now version v{version}). "
                       "See them in the Report and Curate tabs.")
            if skipped:
                with st.expander(plain(summarize_skipped([Skipped(n, r) for n, r in skipped])), expanded=added == 0):
                    st.dataframe([{"file": n, "reason": r} for n, r in skipped], hide_index=True, width="stretch")
        if ds is None:
            set_name = st.text_input("Name of the new data set", placeholder="book-covers", key="new-set-name",
                                     help="Letters, digits, '.', '_' or '-'.", **KEPT)
        else:
            set_name = ds.name
            st.caption(f"Importing into **{plain(ds.name)}**. Pick “{NEW}” in the sidebar to start another "
                       "data set.")
        how = st.radio("From", ["folder", "upload", "urls"], horizontal=True, key="import-from", **KEPT,
                       format_func={"folder": "A folder on this machine", "upload": "Upload images or a zip",
                                    "urls": "A list of URLs"}.get)
        payload = None
        if how == "folder":
            folder = st.text_input("Folder path", placeholder="/home/me/pictures/covers", key="import-folder",
                                   help="Searched recursively; first-level subfolders become classes.", **KEPT)
            payload = folder.strip() or None
        elif how == "upload":
            files = st.file_uploader("Images, or zips of images", accept_multiple_files=True, key="import-files",
                                     type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "zip"])
            payload = [(f.name, f.getvalue()) for f in files] if files else None
        else:
            text = st.text_area("URLs, one per line (or CSV with a url column)", height=120, key="import-urls",
                                **KEPT)
            listing = st.file_uploader("…or a .txt / .csv file of URLs", type=["txt", "csv"], key="import-list")
            if listing is not None:
                text += "\n" + listing.getvalue().decode("utf-8", errors="replace")
            urls = urlimport.parse_url_list(text)
            payload = urls or None
            st.caption(f"{len(urls)} URL{'s' * (len(urls) != 1)} found. Downloads use 4 connections, 15 s "
                       f"timeouts, at most {urlimport.MAX_DOWNLOAD_BYTES // 2**20} MB per image; a second import "
                       "of the same list only fetches what is missing.")
        if st.button("Import", type="primary"):
            if payload is None:
                st.error({"folder": "Enter the path of a folder of images.", "upload": "Choose files to upload.",
                          "urls": "Paste or upload a list of http(s) URLs."}[how])
            else:
                run_import(ds, set_name, how, payload)

        if ds is not None:
            with st.expander(f"Delete {plain(ds.name)}"):
                users = runs_using(ds, run_registry().runs())
                st.caption("Deletes GANscope's copy of the images and every version. Your own files "
                           "elsewhere are not touched, nor are runs: "
                           + (f"{len(users)} run(s) trained on it keep their checkpoints but can no longer be "
                              "resumed or compared with their images (" + ", ".join(plain(r.name) for r in users)
                              + ")." if users else "no run was trained on it."))
                sure = st.checkbox(f"Yes, delete {plain(ds.name)}", key=f"delete-set-{ds.name}")
                if st.button("Delete data set", disabled=not sure):
                    registry.delete(ds.name)
                    set_on_next_run({"set": NEW})
                    st.rerun()

if ds is None:
    for tab in (tab_report, tab_curate):
        if tab.open:
            tab.info("Import images first, or pick a data set in the sidebar.")
    st.stop()

versions = ds.versions()
if not versions:
    for tab in (tab_report, tab_curate):
        if tab.open:
            tab.info("This data set has no images yet: import some.")
    st.stop()

# -- Report ----------------------------------------------------------------------------
if tab_report.open:
    with tab_report:
        infos = scan_with_progress(ds)
        rep = curate.report(list(infos.values()))
        skipped_on_import = ds.skipped_on_import()  # the first SKIPS_KEPT of each import
        skipped_count = len(rep["broken"]) + ds.skipped_on_import_count()
        cols = st.columns(5)
        cols[0].metric("Files", rep["files"])
        cols[1].metric("Usable images", rep["usable"])
        cols[2].metric("Skipped or broken", skipped_count,
                       help="skipped at import, or broken in the data set's folder")
        cols[3].metric("Size", f"{rep['bytes'] / 2**20:.1f} MB")
        cols[4].metric("Square", f"{rep['square']} / {rep['usable']}")
        st.caption("Formats: " + ", ".join(f"{plain(fmt)} {n}" for fmt, n in rep["formats"]) +
                   f" · smallest side {rep['smallest']} px · versions: " + ", ".join(f"v{v.number}" for v in versions))
        if rep["usable"]:
            left, right = st.columns(2)
            sizes = go.Figure(go.Scattergl(x=rep["widths"], y=rep["heights"], mode="markers", opacity=0.5))
            sizes.update_layout(title="Image sizes (px)", xaxis_title="width", yaxis_title="height", height=320,
                                margin=dict(l=10, r=10, t=40, b=10))
            left.plotly_chart(sizes)
            aspects = go.Figure(go.Histogram(x=rep["aspects"], nbinsx=40))
            aspects.update_layout(title="Aspect ratio (width / height)", height=320,
                                  margin=dict(l=10, r=10, t=40, b=10))
            right.plotly_chart(aspects)
        if rep["broken"] or skipped_on_import:
            with st.expander(f"Broken or skipped files ({skipped_count})"):
                listed = len(rep["broken"]) + len(skipped_on_import)
                if listed < skipped_count:
                    st.caption(f"{listed} of them listed: an import keeps the names of its first "
                               f"{SKIPS_KEPT} skipped files only.")
                st.dataframe([{"file": n, "reason": r} for n, r in rep["broken"] + skipped_on_import],
                             hide_index=True, width="stretch")
        version = versions[-1]
        images, image_names = thumbnails(str(version.path), version.fit, version.path.stat().st_mtime)
        pages = max(1, -(-len(images) // PAGE))
        page = st.number_input(f"Preview of v{version.number}: page (of {pages})", 1, pages, 1,
                               key=f"preview-{ds.name}") - 1
        st.image(make_grid(images[page * PAGE:(page + 1) * PAGE], columns=12), width="stretch")
    st.stop()

if not tab_curate.open:
    st.stop()

# -- Curate ------------------------------------------------------------------------------
with tab_curate:
    infos = scan_with_progress(ds)
    version_labels = {v.number: v.label for v in versions}
    keep_valid("base-version", list(version_labels), versions[-1].number)
    base_number = st.selectbox("Start from", list(version_labels), index=len(versions) - 1,
                               format_func=version_labels.get, key="base-version")
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
        open_groups = curate.open_groups(groups, exclude)
        if not open_groups:
            st.caption(f"No {title}.")
            continue
        st.write(f"**{len(open_groups)} group{'s' * (len(open_groups) != 1)} of {title}**")
        for group in open_groups[:8]:
            shown = [n for n in group if n in index]
            if shown:
                st.image(make_grid(thumbs[[index[n] for n in shown]], columns=len(shown)),
                         caption=" · ".join(map(plain, shown)), width=80 * len(shown))
        extra = curate.keep_one(open_groups, by_name)
        if st.button(f"Exclude {len(extra)} (keep the best of each group: most pixels, lossless, original name)",
                     key=f"dedupe-{title}"):
            drop(extra, title)
            st.rerun()

    st.subheader("Outliers")
    st.caption("Images ranked by how far they are from the rest of the set (colour, texture and content, in "
               "EfficientNet-Lite0 features), so that one-off oddities and whole groups that don't belong "
               "come first.")
    ranking_key = f"outliers:{base.path}:{base.path.stat().st_mtime}"
    if ranking_key not in st.session_state and st.button("Rank outliers"):
        bar = st.progress(0.0, text="Embedding images…")
        st.session_state[ranking_key] = curate.outlier_ranking(
            base.path, base.fit, progress=lambda d, t: bar.progress(d / t, text=f"Embedding images {d}/{t}"))
        bar.empty()
    if ranking_key in st.session_state:
        ranking = [(n, s) for n, s in st.session_state[ranking_key] if n not in exclude and n in index]
        top = len(ranking)
        if len(ranking) > 4:
            top = st.slider("Show the top", 4, len(ranking), min(24, len(ranking)), key=f"top-{ranking_key}")
        st.image(make_grid(thumbs[[index[n] for n, _ in ranking[:top]]], columns=12), width="stretch",
                 caption="most unusual first: " + ", ".join(f"{plain(n)} ({s:.2f})" for n, s in ranking[:6])
                         + ("…" if len(ranking) > 6 else ""))
        if st.button(f"Exclude these {min(top, len(ranking))}"):
            drop([n for n, _ in ranking[:top]], "outliers")
            st.rerun()

    st.subheader("Classes")
    classes = class_names_of(base.files)
    if classes:
        keep_classes = st.multiselect("Keep classes", classes, default=classes, key=f"classes-{state_key}")
    else:
        keep_classes = []
        st.caption("No classes: put images in one subfolder per class to get them.")

    st.subheader("Pick by hand")
    pages = max(1, -(-len(thumb_names) // PAGE))
    page = st.number_input(f"Page (of {pages})", 1, pages, 1, key=f"curate-page-{state_key}") - 1
    columns = st.columns(PICK_COLUMNS)
    for k, name in enumerate(thumb_names[page * PAGE:(page + 1) * PAGE]):
        col = columns[k % PICK_COLUMNS]
        col.image(thumbs[index[name]], width="stretch")
        col.caption(plain(name))
        key = f"keep:{state_key}:{name}"
        st.session_state.setdefault(key, name not in exclude)  # (a value= as well would make Streamlit warn)
        kept = col.checkbox("keep", key=key, help=plain(name))
        (exclude.discard if kept else exclude.add)(name)

    st.subheader("Save a version")
    fit = st.radio("Crop mode", FITS, index=FITS.index(base.fit), horizontal=True, key=f"fit-{state_key}",
                   help="crop: fill the square and cut the overflow · pad: fit inside with white bars · "
                        "squash: stretch")
    sample = curate.fitted_images(ds, thumb_names[:8], THUMB_RES, fit)
    st.image(make_grid(sample, columns=8), caption=f"{fit}, as training will see them", width=8 * 80)
    chosen = curate.select(base.files, index, exclude, keep_classes)
    st.write(f"**{len(chosen.kept)}** of {len(base.files)} images kept ({chosen.broken} broken, "
             f"{chosen.excluded} excluded, {chosen.in_dropped_classes} in dropped classes).")
    note = st.text_input("Note", placeholder="no duplicates, no text-heavy covers", key=f"note-{state_key}")
    if st.button(f"Save as v{versions[-1].number + 1}", type="primary", disabled=not chosen.kept):
        saved = ds.save_version(chosen.kept, fit, note=note.strip())
        st.session_state.pop(state_key, None)
        set_on_next_run({"base-version": saved.number})
        st.success(f"Saved v{saved.number} with {len(saved.files)} images. Train on it from the Training page.")
        time.sleep(0.5)
        st.rerun()
