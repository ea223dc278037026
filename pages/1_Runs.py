"""Look at a run: status, loss curves and its sample grids over training."""
import streamlit as st

from core.paths import CHECKPOINTS_DIR
from core.runfolder import RunFolder, list_runs

st.set_page_config(page_title="Runs · GANscope", page_icon="🔭", layout="wide")
st.title("Runs")

runs = list_runs(CHECKPOINTS_DIR)
if not runs:
    st.info("No runs yet. Start one with `python -m core.train --out checkpoints/my-run`.")
    st.stop()

name = st.selectbox("Run", [r["name"] for r in runs])
info = next(r for r in runs if r["name"] == name)
run = RunFolder(info["path"])

cols = st.columns(4)
cols[0].metric("State", info.get("state", "?"))
cols[1].metric("Step", info.get("step", 0))
cols[2].metric("kimg", f"{info.get('kimg', 0):.1f}")
cols[3].metric("img/s", f"{info.get('img_per_sec') or 0:.1f}")
if info.get("message"):
    st.caption(info["message"])

metrics = run.read_metrics()
if metrics:
    st.subheader("Losses")
    st.line_chart({"loss_d": [m["loss_d"] for m in metrics], "loss_g": [m["loss_g"] for m in metrics]})

steps = run.sample_steps()
if steps:
    st.subheader("Samples")
    step = st.select_slider("Step", options=steps, value=steps[-1]) if len(steps) > 1 else steps[0]
    left, right = st.columns(2)
    left.image(str(run.sample_path(step)), caption=f"generated at step {step}")
    if run.reals.exists():
        right.image(str(run.reals), caption="real images")

if run.log.exists():
    with st.expander("Log (last 40 lines)"):
        st.code("\n".join(run.log.read_text(errors="replace").splitlines()[-40:]), language="text")
