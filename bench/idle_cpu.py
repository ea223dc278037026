"""CPU the Streamlit server burns while a page sits open and idle, by file-watcher setting.

Starts the app (Home.py, the project's .streamlit/config.toml) twice, once with the
watcher GANscope ships ("none") and once with Streamlit's default ("auto", which
polls or watches the whole checkout, .venv included), opens the Latent Lab in
headless Chromium, waits for it to settle, then counts the server's CPU seconds
(its whole process tree) over --seconds of idling. Figures: % of one core, and the
ratio of the two.

    python bench/idle_cpu.py [--seconds 60] [--rounds 2]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

import browser  # noqa: E402  (the tests' server and Chromium helpers)

TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of pid and all its descendants (children that exited count via cutime)."""
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(v) for v in fields[11:15]) / TICKS
            todo += [int(c) for t in Path(f"/proc/{p}/task").iterdir()
                     for c in (t / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return total


def idle_share(watcher: str, seconds: float, work: Path) -> float:
    runs = work / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    port, log = browser.free_port(), work / f"streamlit-{watcher}.log"
    cmd = [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
           "--server.fileWatcherType", watcher]
    env = {**os.environ, "GANSCOPE_CHECKPOINTS": str(REPO / "checkpoints"), "GANSCOPE_CACHE": str(work / "cache")}
    with open(log, "wb") as out:
        server = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        browser.wait_healthy(url, server, log)
        with browser.chromium_page() as page:
            page.goto(f"{url}/Latent_Lab")
            page.get_by_label("Seed", exact=True).wait_for(timeout=120_000)
            time.sleep(5)  # let the first render's work finish
            start = tree_cpu_seconds(server.pid)
            time.sleep(seconds)
            return (tree_cpu_seconds(server.pid) - start) / seconds
    finally:
        browser.stop_everything(server, runs, f"GANSCOPE_CACHE={work / 'cache'}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--rounds", type=int, default=2)
    args = p.parse_args()
    shares = {"none": [], "auto": []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):  # alternate, so machine noise hits both alike
            for watcher in shares:
                shares[watcher].append(idle_share(watcher, args.seconds, Path(tmp) / f"{watcher}-{r}"))
                print(f"round {r + 1}, fileWatcherType={watcher}: {100 * shares[watcher][-1]:.1f} % of a core",
                      flush=True)
    none, auto = (sum(v) / len(v) for v in (shares["none"], shares["auto"]))
    print(f"\nidle server CPU, mean of {args.rounds} x {args.seconds:g} s: shipped (none) {100 * none:.1f} % "
          f"of a core, default (auto) {100 * auto:.1f} %; ratio none/auto {none / max(auto, 1e-9):.3f}")


if __name__ == "__main__":
    main()
