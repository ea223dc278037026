"""Choosing a run and checkpoint, and loading its generator once per file version."""
import streamlit as st

from core import checkpoint
from core.paths import checkpoints_dir
from core.registry import Registry, Run


@st.cache_resource(max_entries=4)
def load_generator(path: str, mtime: float, which: str = "G_ema"):
    """Loaded once per checkpoint file version; `mtime` makes a rewritten latest.pt reload."""
    G, ckpt = checkpoint.load_generator(path, which)
    return G, {"model": ckpt["model"], "class_names": ckpt.get("class_names", []),
               "nets": [k for k in ("G_ema", "G") if k in ckpt], "counters": ckpt.get("counters", {})}


def runs_with_checkpoints() -> list[Run]:
    return [r for r in Registry(checkpoints_dir()).runs() if r.folder.latest.exists()]


def checkpoint_names(run: Run) -> list[str]:
    return ["latest.pt"] + [f"step-{s:08d}.pt" for s in reversed(run.folder.snapshot_steps())]


def pick_run_and_checkpoint(runs: list[Run], run_name: str = "", ckpt: str = "latest.pt"):
    """Sidebar run + checkpoint pickers (the demo run first on a fresh start): (run, checkpoint path)."""
    names = [r.name for r in runs]
    if run_name not in names:
        run_name = "demo-emoji" if "demo-emoji" in names else names[0]
    with st.sidebar:
        run_name = st.selectbox("Run", names, index=names.index(run_name))
        run = runs[names.index(run_name)]
        ckpts = checkpoint_names(run)
        ckpt = st.selectbox("Checkpoint", ckpts, index=ckpts.index(ckpt) if ckpt in ckpts else 0,
                            help="latest.pt is refreshed while a run trains")
    return run, run.folder.checkpoints / ckpt


def load_or_stop(path, which: str = "G_ema"):
    """The generator and its info, or a clear message (not a traceback) when it cannot load."""
    try:
        return load_generator(str(path), path.stat().st_mtime, which)
    except (RuntimeError, ValueError, KeyError, OSError) as e:
        st.error(f"Cannot load {path.parent.parent.name}/{path.name}: {str(e).splitlines()[0]}")
        st.stop()
