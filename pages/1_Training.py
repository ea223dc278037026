"""Training: launch runs, watch them live, stop / resume / delete, compare."""
import time

import streamlit as st

from core import monitor
from core.config import RECIPES, preset
from core.datasets import DataRegistry
from core.newrun import NewRun, gpu_count, processes_for, suggested_name, validate
from core.paths import checkpoints_dir
from core.models import ARCHS
from core.registry import Registry, RunError
from core.runfolder import MetricsTail

st.set_page_config(page_title="Training · GANscope", page_icon="🔭", layout="wide")


@st.cache_resource
def get_registry(root: str) -> Registry:
    # One per server: it keeps the launched processes' handles to reap them.
    return Registry(root)


registry = get_registry(str(checkpoints_dir()))


def follow_default(key: str, default):
    """Keep a keyed widget on its suggested default until the user edits it.

    Passing a changing `value=` would make Streamlit treat the widget as new
    and throw away what the user typed."""
    if key not in st.session_state or st.session_state[key] == st.session_state.get(f"{key}-default"):
        st.session_state[key] = default
    st.session_state[f"{key}-default"] = default
st.title("Training")

tab_monitor, tab_new, tab_compare = st.tabs(["Monitor", "New run", "Compare"])


# -- New run ---------------------------------------------------------------------
with tab_new:
    st.caption("Runs train in a background process: closing the browser or restarting the app "
               "does not stop them.")
    sources = {"Built-in emoji": "builtin", "A data set from the Data page": "dataset",
               "Folder on this machine": "folder", "Upload a zip": "zip"}
    source_key = sources[st.radio("Data", list(sources), horizontal=True)]
    folder, upload, version_path, data_name = "", None, "", source_key
    if source_key == "dataset":
        datasets = DataRegistry().all()
        versions = {str(v.path): (d.name, v) for d in datasets for v in reversed(d.versions())}
        if versions:
            version_path = st.selectbox("Data set and version", list(versions),
                                        format_func=lambda p: f"{versions[p][0]} · {versions[p][1].label}")
            data_name, version = versions[version_path]
            st.caption(f"Trains with the version's crop mode ({version.fit}).")
        else:
            st.info("No data sets yet: import your images on the Data page.")
    elif source_key == "folder":
        folder = st.text_input("Folder path", placeholder="/home/me/pictures/covers")
    elif source_key == "zip":
        upload = st.file_uploader("Zip of images (subfolders become classes)", type=["zip"])
    left, mid, right = st.columns(3)
    res = left.selectbox("Resolution", [32, 64, 128], index=1)
    recipe = mid.selectbox("Recipe", list(RECIPES),
                           help="small-data: adaptive augmentation, R1 and an EMA of the generator, for a few "
                                "hundred to a few thousand images. tutorial: the PyTorch DCGAN tutorial as it "
                                "is, as a baseline.")
    arch = right.selectbox("Networks", ARCHS, help="dcgan: the tutorial's generator and discriminator "
                                                   "(fast). resnet: residual networks without BatchNorm.")
    left, mid, right = st.columns(3)
    unit = left.radio("Length in", ["kimg", "minutes"], horizontal=True,
                      help="kimg: thousands of real images shown to D.")
    length = mid.number_input(f"Length ({unit})", min_value=0.0, value=100.0 if unit == "kimg" else 30.0)
    seed = right.number_input("Seed", min_value=0, value=0, step=1)
    batch_col, aug_col, p_col, device_col = st.columns(4)
    follow_default("batch", preset(recipe, arch)["batch"])
    batch = batch_col.number_input("Batch size", min_value=2, max_value=4096, step=8, key="batch")
    aug = aug_col.selectbox("Augmentation", ["recipe's", "ada", "fixed", "none"],
                            help="ada adapts p to how much D overfits; the small-data recipe uses ada, "
                                 "the tutorial none.")
    aug_p = p_col.slider("Fixed p", 0.0, 1.0, 0.2, disabled=aug != "fixed")
    devices = ["auto", "cpu", "cuda"] + (["all"] if gpu_count() > 1 else [])
    device = device_col.selectbox("Device", devices, format_func=lambda d: f"all {gpu_count()} GPUs (data-parallel)"
                                  if d == "all" else d)
    left, right = st.columns(2)
    cond = left.checkbox("Class-conditional (needs labels: subfolders, or the emoji categories)")
    compile_ = right.checkbox("Compile the networks (torch.compile)",
                              help="Faster steps on a GPU after a minute or two of compiling; "
                                   "on a CPU it rarely pays.")
    follow_default("run-name", suggested_name(data_name, res, time.strftime("%m%d-%H%M")))
    name = st.text_input("Run name", key="run-name")
    if st.button("Launch", type="primary"):
        form = NewRun(name=name, source=source_key, version_path=version_path, folder=folder, res=res,
                      recipe=recipe, arch=arch, batch=int(batch),
                      length_unit=unit, length=float(length), aug=None if aug == "recipe's" else aug,
                      aug_p=aug_p, seed=int(seed), cond=cond, device=device, compile=compile_,
                      zip_name=upload.name if upload else "", zip_bytes=upload.getvalue() if upload else None)
        options, errors = validate(form, registry)
        for error in errors:
            st.error(error)
        if options is not None:
            try:
                run = registry.start(name.strip(), options, processes_for(form))
            except RunError as e:
                st.error(str(e))
            else:
                st.session_state["run"] = run.name
                st.toast(f"Started {run.name}")
                st.rerun()

runs = registry.runs()
names = [r.name for r in runs]


# -- Monitor ---------------------------------------------------------------------
def monitor_view(name: str):
    run = registry.get(name)
    status, folder = run.status, run.folder
    cols = st.columns(5)
    cols[0].metric("State", run.state)
    cols[1].metric("Step", status.get("step", 0))
    cols[2].metric("kimg", f"{status.get('kimg', 0):.2f}")
    cols[3].metric("img/s", f"{status.get('img_per_sec') or 0:.1f}")
    cols[4].metric("ETA", monitor.eta_text(status.get("eta_s")) if run.active else "–")
    target = status.get("target_kimg")
    target_text = f"{target:g} kimg" if target else f"{status.get('target_minutes') or 0:g} minutes"
    st.progress(min(1.0, float(status.get("progress") or 0)),
                text=f"{monitor.badge(run.state)} · {status.get('kimg', 0):.2f} kimg of {target_text}"
                     + (f" · {status['message']}" if status.get("message") else ""))
    if run.state == "crashed":
        st.warning("The trainer process is gone without saying why (killed, out of memory, machine "
                   "restart). Resume continues from the last checkpoint.")

    tails = st.session_state.setdefault("tails", {})
    tail = tails.get(str(folder.metrics))
    if tail is None:
        tail = tails[str(folder.metrics)] = MetricsTail(folder.metrics)
    table = tail.table()
    left, right = st.columns([3, 1])
    with right:
        smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, key=f"smooth-{name}")
        log_y = st.checkbox("Log scale", key=f"log-{name}")
        steps = folder.sample_steps()
        if steps:
            st.image(str(folder.sample_path(steps[-1])), caption=f"latest samples, step {steps[-1]}")
    with left:
        if len(table.get("step", ())):
            st.plotly_chart(monitor.training_figure(table, smoothing, log_y), key=f"fig-{name}")
        else:
            st.info("Waiting for the first metrics line…")
    with st.expander("Log", expanded=run.state in ("failed", "crashed")):
        st.code(monitor.log_tail(folder.log), language="text")
    # When a run ends, rerun the whole page so that its buttons change too.
    if st.session_state.get(f"was-active-{name}") and not run.active:
        st.session_state[f"was-active-{name}"] = False
        st.rerun(scope="app")
    st.session_state[f"was-active-{name}"] = run.active


with tab_monitor:
    if not runs:
        st.info("No runs yet: start one in the **New run** tab.")
    else:
        wanted = st.session_state.get("run") or st.query_params.get("run")
        index = names.index(wanted) if wanted in names else 0
        picked = st.selectbox("Run", names, index=index,
                              format_func=lambda n: f"{n}  ({monitor.badge(next(r for r in runs if r.name == n).state)})")
        st.session_state["run"] = picked
        st.query_params["run"] = picked
        current = next(r for r in runs if r.name == picked)

        buttons = st.columns(6, vertical_alignment="bottom")
        if current.active and buttons[0].button("Stop", type="primary"):
            with st.spinner("Stopping: the trainer finishes its step and saves a checkpoint…"):
                registry.stop(picked)
            st.rerun()
        if current.resumable:
            more = buttons[1].number_input("Extra kimg on resume", min_value=0.0, value=0.0,
                                           help="0 = resume to the original length")
            if buttons[2].button("Resume"):
                extra = {}
                if more > 0:
                    extra = {"kimg": round(float(current.status.get("kimg", 0)) + more, 3)}
                try:
                    registry.resume(picked, extra)
                except RunError as e:
                    st.error(str(e))
                else:
                    st.rerun()

        st.fragment(run_every=2.0 if current.active else None)(monitor_view)(picked)

        steps = current.folder.sample_steps()
        if len(steps) > 1:
            st.subheader("Watch it learn")
            step = st.select_slider("Training step", options=steps, value=steps[-1])
            left, right = st.columns(2)
            left.image(str(current.folder.sample_path(step)), caption=f"generated at step {step}")
            if current.folder.reals.exists():
                right.image(str(current.folder.reals), caption="real images")
            if st.button("Make a GIF of all grids"):
                gif = monitor.grids_gif([current.folder.sample_path(s) for s in steps])
                st.download_button("Download GIF", gif, file_name=f"{picked}-training.gif", mime="image/gif")

        with st.expander("Manage run"):
            notes = st.text_area("Notes", value=registry.notes(picked))
            if st.button("Save notes"):
                registry.set_notes(picked, notes)
                st.toast("Notes saved")
            new_name = st.text_input("Rename to", value=picked)
            if st.button("Rename", disabled=current.active):
                try:
                    registry.rename(picked, new_name.strip())
                except RunError as e:
                    st.error(str(e))
                else:
                    st.session_state["run"] = new_name.strip()
                    st.rerun()
            sure = st.checkbox(f"Yes, delete {picked} and all its checkpoints", disabled=current.active)
            if st.button("Delete", disabled=current.active or not sure):
                try:
                    registry.delete(picked)
                except RunError as e:
                    st.error(str(e))
                else:
                    st.session_state.pop("run", None)
                    st.rerun()
            if current.active:
                st.caption("Stop the run to rename or delete it.")


# -- Compare ---------------------------------------------------------------------
with tab_compare:
    if len(runs) < 2:
        st.info("Compare needs at least two runs.")
    else:
        chosen = st.multiselect("Runs", names, default=names[:2])
        key = st.selectbox("Metric", list(monitor.COMPARABLE), format_func=monitor.COMPARABLE.get)
        smoothing = st.slider("Smoothing ", 0.0, 0.99, 0.6)
        log_y = st.checkbox("Log scale ")
        series = {n: monitor.table_from_rows(registry.get(n).folder.read_metrics()) for n in chosen}
        if chosen:
            st.plotly_chart(monitor.compare_figure(series, key, smoothing, log_y))
