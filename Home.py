"""GANscope home: what it is, this machine, your runs, one click to start."""
import os
import time

import streamlit as st

from core import cache
from core.runs.newrun import one_click
from core.runs.registry import RunError
from ui import monitor
from ui.guard import local_only
from ui.pickers import open_monitor
from ui.pickers import registry as get_registry
from ui.text import plain

st.set_page_config(page_title="GANscope", page_icon="🔭", layout="wide")
local_only()  # refuses to work when the app listens beyond this machine uninvited


@st.cache_resource
def device_line() -> tuple[str, bool]:
    import torch
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        return ", ".join(f"{g.name} ({g.total_memory / 2**30:.0f} GiB)" for g in gpus), True
    return f"CPU only: {os.cpu_count()} cores (no CUDA GPU found)", False


registry = get_registry()
device, has_gpu = device_line()

st.title("GANscope")
st.markdown("Train GANs on your own few hundred images, watch them learn, and find out what they learned.  \n"
            "Curate a data set, launch background training runs, explore the generator, "
            "and compare real with generated.")
st.caption(f"Device: {device} · disk cache {cache.size_bytes() / 2**30:.1f} of {cache.limit_bytes() / 2**30:g} GB, "
           f"least recently used first out (GANSCOPE_CACHE_GB)")

name, quick = one_click(has_gpu, time.strftime("%m%d-%H%M%S"))
length = f"{quick['kimg']:g} kimg" if "kimg" in quick else f"{quick['minutes']:g} minutes"
if st.button(f"Train on the built-in emoji set ({quick['res']} px, {length})", type="primary"):
    try:
        registry.start(name, quick)
    except RunError as e:
        st.error(plain(e))
    else:
        open_monitor(name)
        st.switch_page("pages/1_Training.py")
PAGES = [("pages/0_Data.py", "Data: import and curate your images", "🗂️"),
         ("pages/1_Training.py", "Training: launch, watch, compare runs", "📈"),
         ("pages/2_Latent_Lab.py", "Latent Lab: seeds, edits, interpolation", "🧪"),
         ("pages/3_Real_vs_Fake.py", "Real vs Fake: copies, quiz, FID/KID", "⚖️"),
         ("pages/4_Map.py", "Map: real and generated on one UMAP", "🗺️")]
columns = st.columns(3)
for i, (page, label, icon) in enumerate(PAGES):
    columns[i % 3].page_link(page, label=label, icon=icon)

st.subheader("Runs")
runs = registry.runs()
if not runs:
    st.info("No runs yet. Start one here, on the Training page, or from a terminal: "
            "`python -m core.train --out checkpoints/my-run`")
else:
    st.dataframe(
        [{"run": f"Training?run={r.name}", "state": monitor.badge(r.state),
          "health": monitor.health_badge(r.folder.read_health().get("severity")), "step": r.status.get("step"),
          "kimg": round(r.status.get("kimg") or 0, 2), "data": monitor.source_label(r.config.get("data", "")),
          "res": r.config.get("res"),
          "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.status.get("updated_at", 0)))}
         for r in runs],
        hide_index=True, width="stretch",
        column_config={"run": st.column_config.LinkColumn("run", display_text=r"run=(.*)$",
                                                          help="open the run's monitor"),
                       "data": st.column_config.TextColumn("data", help="what the run trains on"),
                       "health": st.column_config.TextColumn(
                           "health", help="is it working? as of its latest sample grid (the Monitor says why)")})
    newest = runs[0].folder
    steps = newest.sample_steps()
    if steps:
        cols = st.columns(2)
        cols[0].image(str(newest.sample_path(steps[-1])), caption=f"{plain(runs[0].name)}: step {steps[-1]}")
        if newest.reals.exists():
            cols[1].image(str(newest.reals), caption="real images")
