"""Training speed in fp32 and in bf16 autocast, per recipe, side by side.

Each round trains every recipe for a few kimg with `python -m core.train`, once with
`--precision fp32` and once with `--precision bf16`, alternating, so drifts in machine
load hit both alike. img/s is the median of the metric lines after the first (which holds
start-up). Whether bf16 pays off depends on the hardware: on CPUs with AVX512-BF16 or AMX
it is native, elsewhere emulated. Quality in bf16 is measured by bench/quality.py
(`--try fp32="--precision fp32"`).

    python bench/precision.py [--res 64] [--kimg 3.2] [--rounds 2] [--recipes projected,small-data,tutorial]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from core.device import describe, native_bf16  # noqa: E402


def img_per_sec(recipe: str, precision: str, args, out: Path) -> float:
    subprocess.run([sys.executable, "-m", "core.train", "--out", str(out), "--recipe", recipe,
                    "--res", str(args.res), "--kimg", str(args.kimg), "--precision", precision,
                    "--threads", str(args.threads), "--sample-kimg", "1000", "--log-every", "5",
                    "--kid-kimg", "0", "--device", "cpu"],
                   cwd=REPO, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lines = (out / "metrics.jsonl").read_text().splitlines()[1:]
    return statistics.median(json.loads(line)["img_per_sec"] for line in lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--kimg", type=float, default=3.2, help="length of each training (default 3.2)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--recipes", default="projected,small-data,tutorial")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"{describe(torch.device('cpu'))}; native bf16: {native_bf16(torch.device('cpu'))}; "
          f"{args.res} px, {args.kimg:g} kimg per training, {args.rounds} rounds", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for recipe in args.recipes.split(","):
            speed = {"fp32": [], "bf16": []}
            for r in range(args.rounds):
                for precision in ("fp32", "bf16") if r % 2 == 0 else ("bf16", "fp32"):
                    speed[precision].append(img_per_sec(recipe, precision, args, Path(tmp) / f"{recipe}-{precision}-{r}"))
            fp32, bf16 = (statistics.median(speed[k]) for k in ("fp32", "bf16"))
            print(f"{recipe:11s}: fp32 {fp32:6.1f} img/s   bf16 {bf16:6.1f} img/s   ratio bf16/fp32 {bf16 / fp32:.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
