"""GANscope landing page. Run with: streamlit run Home.py"""
import streamlit as st

from core.paths import CHECKPOINTS_DIR
from core.runfolder import RunFolder, list_runs

st.set_page_config(page_title="GANscope", page_icon="🔭", layout="wide")

st.title("GANscope")
st.markdown(
    "Train GANs on your own few hundred images, watch them learn, and find out what they learned.  \n"
    "This build ships the training engine, the built-in emoji data set and a demo model; "
    "the dashboard pages arrive next.")

runs = list_runs(CHECKPOINTS_DIR)
st.subheader("Runs")
if not runs:
    st.info("No runs yet. Start one from a terminal: `python -m core.train --out checkpoints/my-run`")
else:
    st.dataframe(
        [{"run": r["name"], "state": r.get("state", "?"), "step": r.get("step"), "kimg": r.get("kimg"),
          "img/s": r.get("img_per_sec"), "message": r.get("message", "")} for r in runs],
        hide_index=True, width="stretch")
    newest = RunFolder(runs[0]["path"])
    steps = newest.sample_steps()
    if steps:
        cols = st.columns(2)
        cols[0].image(str(newest.reals), caption=f"{runs[0]['name']}: real images")
        cols[1].image(str(newest.sample_path(steps[-1])),
                      caption=f"{runs[0]['name']}: generated at step {steps[-1]}")

st.subheader("Train from the command line")
st.code("python -m core.train --out checkpoints/emoji-64            # built-in emoji set\n"
        "python -m core.train --data ~/my-images --res 64 --out checkpoints/mine\n"
        "python -m core.train --out checkpoints/mine --resume       # continue after a stop",
        language="bash")
