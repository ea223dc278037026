"""The run registry, choosing a run and checkpoint, and loading a generator once per file version."""
from pathlib import Path

import streamlit as st

from core import checkpoint
from core.paths import DEMO_RUN, checkpoints_dir
from core.runs.registry import Registry, Run
from ui.links import linked
from ui.state import keep_valid, set_on_next_run, set_values
from ui.text import plain


@st.cache_resource(max_entries=4)
def load_generator(path: str, mtime: float, which: str = "G_ema"):
    """Loaded once per checkpoint file version; `mtime` makes a rewritten latest.pt reload."""
    G, ckpt = checkpoint.load_generator(path, which)
    return G, {"model": ckpt["model"], "class_names": ckpt.get("class_names", []),
               "nets": [k for k in ("G_ema", "G") if k in ckpt], "counters": ckpt.get("counters", {})}


@st.cache_resource
def _registry(root: str) -> Registry:
    return Registry(root)


def registry() -> Registry:
    """The server's one Registry (it keeps the handles of the trainers it launched, to reap them)."""
    return _registry(str(checkpoints_dir()))


def runs_with_checkpoints() -> list[Run]:
    return [r for r in registry().runs() if r.folder.latest.exists()]


def checkpoint_names(run: Run) -> list[str]:
    return ["latest.pt"] + [f"step-{s:08d}.pt" for s in reversed(run.folder.snapshot_steps())]


def pick_run(runs: list[Run]) -> Run:
    """The sidebar's run picker, shared by the generator pages (the same run stays picked
    across them, and the link names it); the demo run is picked on a fresh start."""
    names = [r.name for r in runs]
    default = DEMO_RUN if DEMO_RUN in names else names[0]
    keep_valid("run", names, default)
    with st.sidebar:
        name = linked(st.selectbox, "Run", names, index=names.index(default), key="run",
                      on_change=set_values, args=({"ckpt": "latest.pt"},))
    return runs[names.index(name)]


def pick_checkpoint(run: Run) -> Path:
    """The sidebar's checkpoint picker for `run`: the path of the chosen file."""
    ckpts = checkpoint_names(run)
    keep_valid("ckpt", ckpts, "latest.pt")
    with st.sidebar:
        ckpt = linked(st.selectbox, "Checkpoint", ckpts, key="ckpt", help="latest.pt is refreshed while a run trains")
    return run.folder.checkpoints / ckpt


def pick_trained_run() -> Run:
    """pick_run over the runs that have a checkpoint; with none, the page stops with a hint."""
    runs = runs_with_checkpoints()
    if not runs:
        st.info("No trained generator yet: start a run on the Training page.")
        st.stop()
    return pick_run(runs)


def pick_run_and_checkpoint() -> tuple[Run, Path]:
    """The sidebar's run and checkpoint pickers, as the generator pages show them: (run, checkpoint path)."""
    run = pick_trained_run()
    return run, pick_checkpoint(run)


def load_or_stop(path, which: str = "G_ema"):
    """The generator and its info, or a clear message (not a traceback) when it cannot load."""
    try:
        return load_generator(str(path), path.stat().st_mtime, which)
    except (RuntimeError, ValueError, KeyError, OSError) as e:
        first_line = (str(e).splitlines() or [type(e).__name__])[0]
        st.error(f"Cannot load {plain(path.parent.parent.name)}/{plain(path.name)}: {plain(first_line)}")
        st.stop()


def open_monitor(name: str) -> None:
    """After a launch: the Training page opens on this run's monitor, saying it started."""
    set_on_next_run({"run": name, "tab": "Monitor", "started": name})
