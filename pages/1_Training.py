"""Training: launch runs, watch them live, stop / resume / delete, compare."""
import time

import streamlit as st

from core import health, video
from core.data.datasets import DataRegistry
from core.runs import metrics_csv
from core.runs.newrun import LENGTH_DEFAULTS, NewRun, gpu_count, processes_for, suggested_name, validate
from core.runs.registry import RunError
from core.runs.runfolder import MetricsTail
from core.training.config import (
    ARCHS,
    AUG_MODES,
    AUG_P,
    DEFAULT_RECIPE,
    DEFAULTS,
    DISCS,
    HELP,
    LOSSES,
    RECIPE_HELP,
    RECIPES,
    RESOLUTIONS,
    default_text,
    preset,
)
from ui import monitor
from ui.guard import local_only
from ui.links import linked, notice
from ui.pickers import open_monitor
from ui.pickers import registry as get_registry
from ui.state import KEPT, apply_pending, follow_default, keep_valid
from ui.text import plain

st.set_page_config(page_title="Training · GANscope", page_icon="🔭", layout="wide")
local_only()  # refuses to work when the app listens beyond this machine uninvited
registry = get_registry()
TABS = ["Monitor", "New run", "Compare"]
HOLDOUT_CHOICES = [0.0, 0.05, 0.1, 0.2]

apply_pending()  # a run just launched (here or on Home) opens on its monitor

st.title("Training")
notice()
tab_monitor, tab_new, tab_compare = linked(st.tabs, TABS, key="tab")


# -- New run ---------------------------------------------------------------------
def new_run_form():
    st.caption("Runs train in a background process: closing the browser or restarting the app "
               "does not stop them. Runs on the CPU train one at a time (the next waits as queued), and "
               f"each keeps its newest {DEFAULTS['keep_snapshots']} snapshots.")
    sources = {"Built-in emoji": "builtin", "A data set from the Data page": "dataset",
               "Folder on this machine": "folder", "Upload a zip": "zip"}
    source_key = sources[st.radio("Data", list(sources), horizontal=True, key="new-source", **KEPT)]
    folder, upload, version_path, data_name = "", None, "", source_key
    if source_key == "dataset":
        datasets = DataRegistry().all()
        versions = {str(v.path): (d.name, v) for d in datasets for v in reversed(d.versions())}
        if versions:
            keep_valid("new-version", versions)
            version_path = st.selectbox("Data set and version", list(versions), key="new-version", **KEPT,
                                        format_func=lambda p: f"{versions[p][0]} · {versions[p][1].label}")
            data_name, version = versions[version_path]
            st.caption(f"Trains with the version's crop mode ({plain(version.fit)}).")
        else:
            st.info("No data sets yet: import your images on the Data page.")
    elif source_key == "folder":
        folder = st.text_input("Folder path", placeholder="/home/me/pictures/covers", key="new-folder", **KEPT)
    elif source_key == "zip":
        upload = st.file_uploader("Zip of images (subfolders become classes)", type=["zip"], key="new-zip")
    left, mid, right = st.columns(3)
    res = left.selectbox("Resolution", RESOLUTIONS, index=RESOLUTIONS.index(DEFAULTS["res"]), key="new-res", **KEPT)
    recipe = mid.selectbox("Recipe", list(RECIPES), index=list(RECIPES).index(DEFAULT_RECIPE), key="new-recipe",
                           **KEPT,
                           help="  \n".join([f"**{k}**: {v}." for k, v in RECIPE_HELP.items()]
                                            + [f"Default: {default_text('recipe')}."]))
    keep_valid("new-arch", ["recipe's", *ARCHS], "recipe's")
    arch = right.selectbox("Generator", ["recipe's", *ARCHS], key="new-arch", **KEPT, help=HELP["arch"])
    arch = None if arch == "recipe's" else arch
    with st.expander("Discriminator and loss"):
        left, right = st.columns(2)
        disc = left.selectbox("Discriminator", ["recipe's", *DISCS], key="new-disc", **KEPT, help=HELP["disc"])
        loss = right.selectbox("Loss", ["recipe's", *LOSSES], key="new-loss", **KEPT, help=HELP["loss"])
    disc, loss = (None if v == "recipe's" else v for v in (disc, loss))
    # No min/max on the number boxes: a value out of range reaches validate() and is refused
    # with its reason, instead of the box turning red while Launch uses the last good value.
    left, mid, right = st.columns(3)
    unit = left.radio("Length in", ["kimg", "minutes"], horizontal=True, key="new-unit", **KEPT,
                      help=f"kimg: {HELP['kimg']}. minutes: {HELP['minutes']}.")
    follow_default("new-length", LENGTH_DEFAULTS[unit])
    length = mid.number_input(f"Length ({unit})", key="new-length", **KEPT)
    seed = right.text_input("Seed", str(DEFAULTS["seed"]), key="new-seed", **KEPT, help=HELP["seed"])
    batch_col, aug_col, p_col, device_col = st.columns(4)
    follow_default("batch", preset(recipe, arch)["batch"])  # the recipe's batch until edited
    batch = batch_col.number_input("Batch size", step=8, key="batch", **KEPT)
    aug = aug_col.selectbox("Augmentation", ["recipe's", *AUG_MODES], key="new-aug", **KEPT, help=HELP["aug"])
    aug_p = p_col.slider("Fixed p", 0.0, 1.0, AUG_P["fixed"], disabled=aug != "fixed", key="new-aug-p", **KEPT)
    devices = ["auto", "cpu", "cuda"] + (["all"] if gpu_count() > 1 else [])
    keep_valid("new-device", devices, "auto")
    device = device_col.selectbox("Device", devices, key="new-device", **KEPT,
                                  format_func=lambda d: f"all {gpu_count()} GPUs (data-parallel)" if d == "all" else d)
    left, right = st.columns(2)
    cond = left.checkbox("Class-conditional (needs labels: subfolders, or the emoji categories)", key="new-cond",
                         **KEPT)
    compile_ = right.checkbox("Compile the networks (torch.compile)", key="new-compile", **KEPT, help=HELP["compile"])
    tensorboard = right.checkbox("Also write TensorBoard event files", key="new-tensorboard", **KEPT,
                                 help=HELP["tensorboard"])
    holdout = left.select_slider("Keep back for the copying test", HOLDOUT_CHOICES, value=DEFAULTS["holdout"],
                                 format_func=lambda v: f"{v:.0%}", key="new-holdout", **KEPT, help=HELP["holdout"])
    follow_default("run-name", suggested_name(data_name, res, time.strftime("%m%d-%H%M")))
    name = st.text_input("Run name", key="run-name", **KEPT)
    if st.button("Launch", type="primary"):
        form = NewRun(name=name, source=source_key, version_path=version_path, folder=folder, res=res,
                      recipe=recipe, arch=arch, disc=disc, loss=loss, batch=batch, length_unit=unit,
                      length=float(length),
                      aug=None if aug == "recipe's" else aug, aug_p=aug_p, seed=seed, cond=cond, device=device,
                      compile=compile_, tensorboard=tensorboard, holdout=holdout,
                      zip_name=upload.name if upload else "", zip_bytes=upload.getvalue() if upload else None)
        options, errors = validate(form, registry)
        for error in errors:
            st.error(plain(error))
        if options is not None:
            try:
                run = registry.start(name.strip(), options, processes_for(form))
            except RunError as e:
                st.error(plain(e))
            else:
                open_monitor(run.name)
                st.rerun()


# -- Monitor ---------------------------------------------------------------------
def live_view(name: str, shown_state: str):
    """The part of the monitor that refreshes itself while the run trains."""
    run = registry.get(name)
    if run.state != shown_state:  # started, finished, crashed: the buttons and the picker change too
        st.rerun(scope="app")
    status, folder = run.status, run.folder
    cols = st.columns(5)
    cols[0].metric("State", plain(run.state))
    cols[1].metric("Step", status.get("step", 0))
    cols[2].metric("kimg", f"{status.get('kimg', 0):.2f}")
    cols[3].metric("img/s", f"{status.get('img_per_sec') or 0:.1f}")
    cols[4].metric("ETA", monitor.eta_text(status.get("eta_s")) if run.active else "–")
    st.progress(min(1.0, float(status.get("progress") or 0)),
                text=plain(f"{monitor.badge(run.state)} · {monitor.progress_text(status)}"
                           + (f" · {status['message']}" if status.get("message") else "")))
    if run.state == "crashed":
        st.warning("The trainer process is gone without saying why (killed, out of memory, machine "
                   "restart). Resume continues from the last checkpoint.")

    tails = st.session_state.setdefault("tails", {})
    tail = tails.get(str(folder.metrics_file))
    if tail is None:
        tail = tails[str(folder.metrics_file)] = MetricsTail(folder.metrics_file)
    table = tail.table()
    findings = health_panel(run, table)
    left, right = st.columns([3, 1])
    with right:
        smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, key="smoothing", **KEPT)
        log_y = st.checkbox("Log scale", key="log-scale", **KEPT)
        steps = folder.sample_steps()
        if steps:
            st.image(str(folder.sample_path(steps[-1])), caption=f"latest samples, step {steps[-1]}")
    with left:
        if len(table.get("step", ())):
            marks = monitor.health_marks(findings, table)
            st.plotly_chart(monitor.training_figure(table, smoothing, log_y, marks), key=f"fig-{name}")
        else:
            st.info("Waiting for the first metrics line…")
    with st.expander("Log", expanded=run.state in ("failed", "crashed")):
        st.code(monitor.log_tail(folder.log_file), language="text")
    # Made when clicked (a callable), not on every tick of the live view.
    st.download_button("Download the metrics (CSV)", lambda: metrics_csv.to_csv(folder.read_metrics()),
                       file_name=f"{name}-metrics.csv", mime="text/csv", key=f"csv-{name}", on_click="ignore")
    if len(steps) > 1:
        watch_it_learn(name, folder, steps)


SHOW = {"ok": st.success, "info": st.info, "warning": st.warning, "problem": st.error}


def health_panel(run, table) -> list[health.Finding]:
    """Is it working? The health check's findings (core.health), refreshed with the curves."""
    folder = run.folder
    result = health.assess(folder.path, table=table)
    with st.container(border=True):
        st.markdown(f"**Is it working?** {monitor.health_badge(result.severity)}")
        for f in result.findings:
            SHOW[f.severity](f"**{plain(f.title)}**  \n{plain(f.evidence)}  \n**What to do:** {plain(f.action)}")
            if f.rewind is not None and run.resumable and st.button(
                    f"Rewind to step {f.rewind} with half the learning rates", key=f"rewind-{run.name}-{f.rewind}"):
                rewind(run, f.rewind)
        if not folder.health_file.exists() and not run.active and folder.sample_steps():
            st.caption("This run has no grid measurements yet (trained before the health check), so mode "
                       "collapse and stalls are not judged.")
            if st.button("Measure its sample grids", key=f"health-{run.name}"):
                bar = st.progress(0.0, text="Measuring the sample grids…")
                try:
                    measured = health.measure_grids(folder.path, progress=lambda done, total: bar.progress(
                        done / total, text=f"Measuring the sample grids… {done}/{total}"))
                    folder.write_health({**measured, **health.assess(folder.path, measured=measured).to_dict()})
                except (OSError, ValueError) as e:
                    st.error(f"Could not measure the grids: {plain(e)}")
                else:
                    st.rerun()
    return result.findings


def rewind(run, step: int, lr_scale: float = 0.5):
    """Back to a snapshot, with the learning rates scaled (the health check's advice: half)."""
    try:
        if run.active:
            with st.spinner("Stopping: the trainer finishes its step and saves a checkpoint…"):
                registry.stop(run.name)
        registry.resume(run.name, rewind=step, lr_scale=lr_scale)
    except RunError as e:
        st.error(plain(e))
    else:
        st.rerun(scope="app")


def watch_it_learn(name: str, folder, steps: list[int]):
    st.subheader("Watch it learn")
    key = f"learn-{name}"
    follow_default(key, steps[-1])  # follows the newest grid until moved
    keep_valid(key, steps, steps[-1])
    step = st.select_slider("Training step", options=steps, key=key)
    left, right = st.columns(2)
    left.image(str(folder.sample_path(step)), caption=f"generated at step {step}")
    if folder.reals.exists():
        right.image(str(folder.reals), caption="real images")
    gifs = st.session_state.setdefault("gifs", {})
    cols = st.columns([1, 1, 1, 2], vertical_alignment="bottom")
    if cols[0].button("Make a GIF of all grids", key=f"gif-{name}"):
        gifs[name] = (len(steps), monitor.grids_gif([folder.sample_path(s) for s in steps]))
    fps = cols[2].slider("Grids per second", 1, 30, 4, key=f"learn-fps-{name}", **KEPT)
    if cols[1].button("Make an MP4", key=f"mp4-{name}"):
        bar = st.progress(0.0, text="encoding…")
        frames = monitor.grid_frames([folder.sample_path(s) for s in steps])
        st.session_state[f"learn-mp4-{name}"] = (len(steps), video.mp4(frames, fps, progress=lambda done, total:
                                                                       bar.progress(done / total)))
        bar.empty()
    if name in gifs:
        n, data = gifs[name]
        st.download_button(f"Download GIF ({n} grids)", data, file_name=f"{name}-training.gif", mime="image/gif")
    if f"learn-mp4-{name}" in st.session_state:
        n, data = st.session_state[f"learn-mp4-{name}"]
        st.download_button(f"Download MP4 ({n} grids)", data, file_name=f"{name}-training.mp4", mime="video/mp4")


def monitor_tab():
    runs = registry.runs()
    if not runs:
        st.info("No runs yet: start one in the **New run** tab.")
        return
    names = [r.name for r in runs]
    keep_valid("run", names, names[0])
    if (started := st.session_state.pop("started", None)) in names:
        st.success(f"Started **{plain(started)}**: it trains in the background; this monitor follows it.")
    picked = linked(st.selectbox, "Run", names, key="run")
    current = runs[names.index(picked)]

    buttons = st.columns(6, vertical_alignment="bottom")
    if current.active and buttons[0].button("Stop", type="primary"):
        with st.spinner("Stopping: the trainer finishes its step and saves a checkpoint…"):
            registry.stop(picked)
        st.rerun()
    if current.resumable:
        more = buttons[1].number_input("Extra kimg on resume", min_value=0.0, value=0.0, key=f"extra-{picked}",
                                       help="0 = resume to the original length")
        if buttons[2].button("Resume"):
            extra = {}
            if more > 0:
                extra = {"kimg": round(float(current.status.get("kimg", 0)) + more, 3)}
            try:
                registry.resume(picked, extra)
            except RunError as e:
                st.error(plain(e))
            else:
                st.rerun()

    st.fragment(run_every=2.0 if current.active else None)(live_view)(picked, current.state)

    with st.expander("Manage run"):
        if current.resumable and (snapshots := current.folder.snapshot_steps()):
            st.markdown("**Go back to a snapshot** and train on from there (its metric lines and grids after it "
                        "are dropped; every snapshot stays)")
            cols = st.columns(3, vertical_alignment="bottom")
            step = cols[0].selectbox("Snapshot of step", snapshots[::-1], key=f"snapshot-{picked}")
            scale = cols[1].select_slider("Learning rates x", [0.25, 0.5, 1.0], value=0.5, key=f"lr-scale-{picked}")
            if cols[2].button("Rewind", key=f"rewind-{picked}"):
                rewind(current, step, scale)
        loaded = st.session_state.setdefault(f"notes-loaded-{picked}", registry.notes(picked))
        notes = st.text_area("Notes", value=loaded, key=f"notes-{picked}")
        if st.button("Save notes"):
            try:
                registry.set_notes(picked, notes, loaded)
            except RunError as e:
                st.error(plain(e))
            else:
                st.session_state[f"notes-loaded-{picked}"] = notes
                st.toast("Notes saved")
        new_name = st.text_input("Rename to", value=picked, key=f"rename-{picked}")
        if st.button("Rename", disabled=current.active):
            try:
                registry.rename(picked, new_name.strip())
            except RunError as e:
                st.error(plain(e))
            else:
                open_monitor(new_name.strip())
                st.rerun()
        sure = st.checkbox(f"Yes, delete {plain(picked)} and all its checkpoints", disabled=current.active,
                           key=f"delete-{picked}")
        if st.button("Delete", disabled=current.active or not sure):
            try:
                registry.delete(picked)
            except RunError as e:
                st.error(plain(e))
            else:
                st.rerun()
        if current.active:
            st.caption("Stop the run to rename or delete it.")


# -- Compare ---------------------------------------------------------------------
def compare_tab():
    names = [r.name for r in registry.runs()]
    if len(names) < 2:
        st.info("Compare needs at least two runs.")
        return
    keep_valid("compare-runs", names, names[:2])
    chosen = st.multiselect("Runs", names, default=names[:2], key="compare-runs", **KEPT)
    key = st.selectbox("Metric", list(monitor.COMPARABLE), format_func=monitor.COMPARABLE.get,
                       key="compare-metric", **KEPT)
    smoothing = st.slider("Smoothing", 0.0, 0.99, 0.6, key="compare-smoothing", **KEPT)
    log_y = st.checkbox("Log scale", key="compare-log", **KEPT)
    series = {n: monitor.table_from_rows(registry.get(n).folder.read_metrics()) for n in chosen}
    if chosen:
        st.plotly_chart(monitor.compare_figure(series, key, smoothing, log_y))


# Only the open tab runs (the tabs keep their state), so the monitor's ticks stay cheap.
for tab, draw in ((tab_monitor, monitor_tab), (tab_new, new_run_form), (tab_compare, compare_tab)):
    if tab.open:
        with tab:
            draw()
