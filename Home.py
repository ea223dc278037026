"""GANscope home: what it is, this machine, your runs, one click to start."""
import os
import time

import streamlit as st

from core import monitor
from core.paths import BUILTIN_EMOJI, checkpoints_dir
from core.registry import Registry, RunError

st.set_page_config(page_title="GANscope", page_icon="🔭", layout="wide")


@st.cache_resource
def get_registry(root: str) -> Registry:
    return Registry(root)


@st.cache_resource
def device_line() -> tuple[str, bool]:
    import torch
    if torch.cuda.is_available():
        gpus = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
        return ", ".join(f"{g.name} ({g.total_memory / 2**30:.0f} GiB)" for g in gpus), True
    return f"CPU only: {os.cpu_count()} cores (no CUDA GPU found)", False


registry = get_registry(str(checkpoints_dir()))
device, has_gpu = device_line()

st.title("GANscope")
st.markdown("Train GANs on your own few hundred images, watch them learn, and find out what they learned.  \n"
            "Curate a data set, launch background training runs, explore the generator, "
            "and compare real with generated.")
st.caption(f"Device: {device}")

left, right = st.columns([2, 1])
with right:
    st.subheader("Start here")
    quick = dict(res=64, kimg=200) if has_gpu else dict(res=32, minutes=20, threads=max(1, (os.cpu_count() or 2) - 1))
    length = f"{quick['kimg']} kimg" if "kimg" in quick else f"{quick['minutes']} minutes"
    if st.button(f"Train on the built-in emoji set ({quick['res']} px, {length})", type="primary"):
        name = f"emoji-{quick['res']}px-{time.strftime('%m%d-%H%M%S')}"
        try:
            registry.start(name, {"data": BUILTIN_EMOJI, **quick})
        except RunError as e:
            st.error(str(e))
        else:
            st.session_state["run"] = name
            st.switch_page("pages/1_Training.py")
    st.page_link("pages/0_Data.py", label="Data: import and curate your own images", icon="🗂️")
    st.page_link("pages/1_Training.py", label="Training: launch, monitor, compare runs", icon="📈")
    st.page_link("pages/2_Latent_Lab.py", label="Latent Lab: seeds, truncation, interpolation, edits", icon="🧪")
    st.page_link("pages/3_Real_vs_Fake.py", label="Real vs Fake: near-copies, blind quiz, FID/KID", icon="⚖️")
    st.page_link("pages/4_Map.py", label="Map: real and generated images on one UMAP", icon="🗺️")

with left:
    st.subheader("Runs")
    runs = registry.runs()
    if not runs:
        st.info("No runs yet. Start one here, on the Training page, or from a terminal: "
                "`python -m core.train --out checkpoints/my-run`")
    else:
        st.dataframe(
            [{"run": r.name, "state": monitor.badge(r.state), "step": r.status.get("step"),
              "kimg": round(r.status.get("kimg") or 0, 2),
              "data": r.config.get("data", ""), "res": r.config.get("res"),
              "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(r.status.get("updated_at", 0)))}
             for r in runs],
            hide_index=True, width="stretch")
        newest = runs[0].folder
        steps = newest.sample_steps()
        if steps:
            cols = st.columns(2)
            cols[0].image(str(newest.sample_path(steps[-1])), caption=f"{runs[0].name}: step {steps[-1]}")
            if newest.reals.exists():
                cols[1].image(str(newest.reals), caption="real images")
