"""The runs under checkpoints/: list, start, stop, resume, delete, rename, notes.

Trainers run as detached processes (their own session, output appended to
train.log), so they outlive Streamlit reruns, closed browsers and app
restarts. Everything known about a run is read back from its folder.
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import atomic
from .paths import REPO_ROOT, checkpoints_dir
from .runfolder import RunFolder

NAME_RULE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
ACTIVE = ("starting", "queued", "running", "stopping")
HEARTBEAT_STALE_S = 60
NOTES = "notes.md"


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
        from .checkpoint import is_resumable_file  # torch: only when asked
        latest = self.folder.latest
        return self.state in ("stopped", "finished", "failed", "crashed") and (
            not latest.exists() or is_resumable_file(latest))


def validate_name(name: str) -> str:
    """Run names are single folder names: no separators, no '..', nothing hidden."""
    name = (name or "").strip()
    if not NAME_RULE.match(name) or ".." in name:
        raise RunError(f"invalid run name {name!r}: use 1-64 letters, digits, '.', '_' or '-', "
                       f"starting with a letter or digit")
    return name


def process_alive(pid) -> bool:
    """True for a live trainer process; false for a dead pid, a zombie or a reused pid."""
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (OSError, TypeError, ValueError):
        return False
    proc = Path(f"/proc/{pid}")
    if proc.exists():  # Linux: rule out zombies and pids reused by other programs
        try:
            if proc.joinpath("stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return False
            return b"core.train" in proc.joinpath("cmdline").read_bytes()
        except OSError:
            return False
    return True


def effective_state(status: dict, now: float | None = None) -> str:
    state = status.get("state", "unknown")
    if state in ACTIVE:
        now = time.time() if now is None else now
        if not process_alive(status.get("pid")) or now - status.get("heartbeat", 0) > HEARTBEAT_STALE_S:
            return "crashed"
    return state


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
            if path.is_dir() and NAME_RULE.match(path.name) and \
                    ((path / "config.json").exists() or (path / "status.json").exists()):
                found.append(self._read(path))
        return sorted(found, key=lambda r: r.status.get("updated_at", 0), reverse=True)

    def get(self, name: str) -> Run:
        path = self.path_of(name)
        if not path.is_dir():
            raise RunError(f"no run named {name!r}")
        self._reap()
        return self._read(path)

    def _read(self, path: Path) -> Run:
        status, config = _read_json(path / "status.json"), _read_json(path / "config.json")
        return Run(path.name, path, effective_state(status) if status else "unknown", status, config)

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

    def resume(self, name: str, options: dict | None = None) -> Run:
        """Continue a stopped, finished, failed or crashed run (longer with kimg/minutes)."""
        run = self.get(name)
        if run.active:
            raise RunError(f"{name} is {run.state}; stop it first")
        if not run.resumable:  # an exported generator (the demo run): launching would only mark it failed
            raise RunError(f"{name} holds only an exported generator: it can be explored, not resumed")
        processes = run.config.get("runtime", {}).get("world_size", 1)  # as many as it trained with
        if run.folder.latest.exists():
            return self._launch(run.path, ["--resume", *trainer_args(options or {})], processes)
        # Stopped or failed before its first checkpoint: start it again from its config.
        config = {k: v for k, v in run.config.items() if k not in ("out", "runtime")}
        return self._launch(run.path, trainer_args({**config, **(options or {})}), processes)

    def _launch(self, path: Path, args: list[str], processes: int = 1) -> Run:
        path.mkdir(parents=True, exist_ok=True)
        cmd = [*trainer_command(processes), "--out", str(path), *args]
        with open(path / "train.log", "ab") as log:
            log.write(f"\n$ {' '.join(cmd[1:])}\n".encode())
            log.flush()
            child = subprocess.Popen(cmd, cwd=REPO_ROOT, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
        self._children[child.pid] = child
        # Visible at once, before the trainer has imported torch.
        if not (path / "status.json").exists() or effective_state(_read_json(path / "status.json")) not in ACTIVE:
            atomic.write_json(path / "status.json", {
                "state": "starting", "pid": child.pid, "heartbeat": time.time(), "started_at": time.time(),
                "updated_at": time.time(), "message": "starting the trainer", "step": 0, "kimg": 0.0})
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
                os.killpg(os.getpgid(pid), signal.SIGKILL)  # the trainer leads its own process group
            except ProcessLookupError:
                pass  # it exited just now
            message = f"killed after not stopping within {timeout:g} s; resume continues from the last checkpoint"
        self._reap()
        run = self.get(name)
        if run.state == "crashed":
            # Stopped before its signal handler was installed (still importing),
            # or killed: the trainer could not write its final status, so we do.
            atomic.write_json(run.folder.status, {**run.status, "state": "stopped", "message": message,
                                                  "updated_at": time.time()})
            run = self.get(name)
        return run

    def _reap(self) -> None:
        """Collect exited children so they do not linger as zombies."""
        for pid, child in list(self._children.items()):
            if child.poll() is not None:
                del self._children[pid]

    # -- housekeeping ------------------------------------------------------------
    def delete(self, name: str) -> None:
        run = self.get(name)
        if run.active:
            raise RunError(f"{name} is {run.state}; stop it before deleting it")
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
        run.path.rename(new_path)
        return self.get(new_name)

    def notes(self, name: str) -> str:
        path = self.path_of(name) / NOTES
        return path.read_text(encoding="utf-8") if path.exists() else ""

    def set_notes(self, name: str, text: str) -> None:
        atomic.write_text(self.get(name).path / NOTES, text)


def trainer_command(processes: int = 1) -> list[str]:
    """`python -m core.train`, or torchrun over `processes` local processes (rendezvous on 127.0.0.1)."""
    if processes <= 1:
        return [sys.executable, "-m", "core.train"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "core.train"]


def trainer_args(options: dict) -> list[str]:
    """TrainConfig-style settings -> `python -m core.train` arguments."""
    args = []
    for key, value in options.items():
        if value is None or key in ("out", "resume", "runtime"):
            continue
        flag = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + key.replace("_", "-"))
        else:
            args += [flag, str(value)]
    return args


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
