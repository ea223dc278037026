"""The runs under checkpoints/: list, start, stop, resume, delete, rename, notes.

Trainers run as detached processes (their own session, output appended to
train.log), so they outlive Streamlit reruns, closed browsers and app
restarts. Everything known about a run is read back from its folder
(core/runs/runfolder.py), which the trainer alone writes while it lives.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from core import atomic
from core.paths import REPO_ROOT, checkpoints_dir
from core.runs.runfolder import ACTIVE, RESUMABLE, RunFolder, process_alive
from core.training.config import DEFAULTS

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
LAUNCH_WAIT_S = 60  # the trainer's first status comes before it imports torch: a second or two


class RunError(Exception):
    """A refused action; the message is shown to the user as-is."""


@dataclass
class Run:
    name: str
    path: Path
    state: str                    # status state, or "crashed" when its trainer is gone
    status: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.path)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE

    @property
    def resumable(self) -> bool:
        """Not running, and its latest checkpoint (if any) is a full training state, not an export."""
        from core.checkpoint import is_resumable_file  # torch: only when asked
        latest = self.folder.latest
        return self.state in RESUMABLE and (not latest.exists() or is_resumable_file(latest))


def validate_name(name: str) -> str:
    """Run names are single folder names: no separators, no '..', nothing hidden."""
    name = (name or "").strip()
    if not NAME_RULE.match(name) or ".." in name:
        raise RunError(f"invalid run name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                       f"starting with a letter or digit")
    return name


class Registry:
    def __init__(self, root: Path | str | None = None):
        self.root = Path(root) if root is not None else checkpoints_dir()
        self._children: dict[int, subprocess.Popen] = {}

    # -- reading -----------------------------------------------------------------
    def path_of(self, name: str) -> Path:
        # A validated name is one plain folder name, so the path stays in root.
        # The run folder itself may be a symlink to a run kept elsewhere.
        return self.root.resolve() / validate_name(name)

    def runs(self) -> list[Run]:
        """Every run, most recently updated first."""
        self._reap()
        if not self.root.exists():
            return []
        found = []
        for path in self.root.iterdir():
            if path.is_dir() and NAME_RULE.match(path.name) and RunFolder(path).holds_run():
                found.append(self._read(path))
        return sorted(found, key=lambda r: _number(r.status.get("updated_at")), reverse=True)

    def get(self, name: str) -> Run:
        path = self.path_of(name)
        if not path.is_dir():
            raise RunError(f"no run named {name!r}")
        self._reap()
        return self._read(path)

    def _read(self, path: Path) -> Run:
        folder = RunFolder(path)
        status, config = folder.read_status(), folder.read_config()
        return Run(path.name, path, folder.state(status), status, config)

    def exists(self, name: str) -> bool:
        return self.path_of(name).exists()

    # -- starting and stopping ---------------------------------------------------
    def start(self, name: str, options: dict, processes: int = 1) -> Run:
        """Launch a new run: `options` are trainer settings (TrainConfig names); with processes > 1,
        data-parallel over that many processes (one per GPU) through torchrun."""
        path = self.path_of(name)
        if path.exists() and any(path.iterdir()):
            raise RunError(f"a run named {name!r} already exists")
        return self._launch(path, trainer_args(options), processes)

    def resume(self, name: str, options: dict | None = None, rewind: int | None = None,
               lr_scale: float | None = None) -> Run:
        """Continue a stopped, finished, failed or crashed run (longer with kimg/minutes); one that
        stopped before its first checkpoint starts over with its settings. `rewind`: from the
        snapshot of that step instead; `lr_scale`: multiply the learning rates (the trainer's
        --rewind and --lr-scale)."""
        run = self.get(name)
        if run.active:
            raise RunError(f"{name} is {run.state}; stop it first")
        if not run.resumable:  # an exported generator (the demo run): launching would only mark it failed
            raise RunError(f"{name} holds only an exported generator: it can be explored, not resumed")
        with _idle(run.folder):
            pass  # no trainer holds it (the one launched below takes it)
        runtime = run.config.get("runtime")
        processes = runtime.get("world_size", 1) if isinstance(runtime, dict) else 1  # as many as it trained with
        if not isinstance(processes, int) or not 1 <= processes <= (os.cpu_count() or 1):
            processes = 1  # a damaged or edited config.json must not start thousands of trainers
        course = (["--rewind", str(int(rewind))] if rewind is not None else []) + (
            ["--lr-scale", str(float(lr_scale))] if lr_scale is not None else [])
        return self._launch(run.path, ["--resume", *course, *trainer_args(options or {})], processes)

    def _launch(self, path: Path, args: list[str], processes: int = 1) -> Run:
        """Start a trainer and wait until it has claimed the folder (its first status), or refused."""
        folder = RunFolder(path)
        path.mkdir(parents=True, exist_ok=True)
        before = folder.read_status().get("started_at")
        cmd = [*trainer_command(processes), "--out", str(path), *args]
        with open(folder.log_file, "ab") as log:
            log.write(f"\n$ {' '.join(cmd[1:])}\n".encode())
            log.flush()
            child = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self._children[child.pid] = child
        deadline = time.monotonic() + LAUNCH_WAIT_S
        while folder.read_status().get("started_at") == before and time.monotonic() < deadline:
            if child.poll() is not None:  # refused before it claimed the folder: say why
                reason = _last_line(folder.log_file) or f"the trainer exited with code {child.returncode}"
                if before is not None:  # a resume: the run stays as it was
                    raise RunError(f"could not resume {path.name}: {reason}")
                folder.mark("failed", reason)
                break
            time.sleep(0.05)
        return self._read(path)

    def stop(self, name: str, timeout: float = 30.0) -> Run:
        """SIGTERM (the trainer saves and exits); SIGKILL if it is still there after `timeout`."""
        run = self.get(name)
        pid = run.status.get("pid")
        if run.state not in ACTIVE or not process_alive(pid):
            return run
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while process_alive(pid) and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.1)
        message = "stopped"
        if process_alive(pid):
            try:
                group = os.getpgid(pid)  # a trainer we launched leads its own group; one from a shell may not
                os.killpg(group, signal.SIGKILL) if group != os.getpgrp() else os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # it exited just now
            message = f"killed after not stopping within {timeout:g} s; resume continues from the last checkpoint"
        self._reap()
        run = self.get(name)
        if run.state == "crashed":  # killed: the trainer could not write its final status
            run.folder.mark("stopped", message)
            run = self.get(name)
        return run

    def _reap(self) -> None:
        """Collect exited children so they do not linger as zombies."""
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                self._children.pop(pid, None)  # the registry is shared by every session's thread

    # -- housekeeping ------------------------------------------------------------
    def delete(self, name: str) -> None:
        run = self.get(name)
        if run.active:
            raise RunError(f"{name} is {run.state}; stop it before deleting it")
        with _idle(run.folder):
            if run.path.is_symlink():
                run.path.unlink()  # a linked run: remove the link, not the run it points to
            else:
                shutil.rmtree(run.path)

    def rename(self, name: str, new_name: str) -> Run:
        run = self.get(name)
        new_path = self.path_of(new_name)
        if run.active:
            raise RunError(f"{name} is {run.state}; stop it before renaming it")
        if new_path.exists():
            raise RunError(f"a run named {new_name!r} already exists")
        with _idle(run.folder):
            run.path.rename(new_path)
        return self.get(new_name)

    def notes(self, name: str) -> str:
        path = RunFolder(self.path_of(name)).notes_file
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def set_notes(self, name: str, text: str, loaded: str | None = None) -> None:
        """Save the notes; with `loaded` (what this editor started from), refuse when someone
        else saved other notes meanwhile (another tab), instead of silently replacing them."""
        path = self.get(name).folder.notes_file
        with atomic.locked(path):
            current = path.read_text(encoding="utf-8") if path.exists() else ""
            if loaded is not None and current not in (loaded, text):
                raise RunError(f"the notes of {name} were changed elsewhere since you opened them; "
                               f"copy your text, reload the page and merge")
            atomic.write_text(path, text)


def trainer_command(processes: int = 1) -> list[str]:
    """`python -m core.train`, or torchrun over `processes` local processes (rendezvous on 127.0.0.1)."""
    if processes <= 1:
        return [sys.executable, "-m", "core.train"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "core.train"]


def _number(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def trainer_args(options: dict) -> list[str]:
    """Trainer settings (TrainConfig names) -> `python -m core.train` arguments. Only known settings
    pass: a key from a file (a run's config.json) must never become an option of its own."""
    unknown = sorted(set(options) - set(DEFAULTS) - {"out"})
    if unknown:
        raise RunError(f"unknown trainer settings: {', '.join(map(repr, unknown))}")
    args = []
    for key, value in options.items():
        if value is None or key == "out":
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


@contextmanager
def _idle(folder: RunFolder):
    try:
        with folder.exclusive():
            yield
    except ValueError as e:
        raise RunError(str(e)) from None


def _last_line(path: Path) -> str:
    """The last line a refused trainer wrote (its reason), from the end of its log."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
            lines = f.read().decode("utf-8", "replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].removeprefix("error: ").strip() if lines else ""
