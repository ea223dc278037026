"""python -m core.health RUN_DIR [--json] [--write]: is this run working? Findings in plain words.

Exit status 0 with the findings printed (whatever they say), 1 when RUN_DIR is not a run
folder or its grids cannot be measured.
"""
import argparse
import json
import sys
from pathlib import Path

from core.health import assess, measure_grids

MARKS = {"ok": "OK", "info": "--", "warning": "!!", "problem": "XX"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.health", description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the run folder (checkpoints/NAME)")
    p.add_argument("--json", action="store_true", help="print the findings and grid numbers as JSON")
    p.add_argument("--write", action="store_true", help="measure the sample grids again and write health.json "
                   "(for runs trained before it existed; not while the run trains)")
    args = p.parse_args(argv)
    from core.runs.runfolder import RunFolder
    run = RunFolder(args.run)
    if not run.config_file.is_file():
        print(f"error: {args.run} is not a run folder (no config.json)", file=sys.stderr)
        return 1
    measured = None
    if args.write or not run.health_file.is_file():
        if args.write and run.trainer_alive():
            print(f"error: {args.run} is training: its trainer keeps health.json up to date", file=sys.stderr)
            return 1
        try:
            measured = measure_grids(run.path, progress=lambda done, total: print(
                f"\rmeasuring sample grids {done}/{total}", end="", file=sys.stderr, flush=True))
            print(file=sys.stderr)
        except (OSError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
    result = assess(run.path, measured=measured)
    if args.write:
        run.write_health({**measured, **result.to_dict()})
    if args.json:
        print(json.dumps(result.to_dict(), indent=1))
        return 0
    print(f"{run.path.name}: {result.severity}")
    for f in result.findings:
        print(f"\n[{MARKS[f.severity]}] {f.title}\n     evidence: {f.evidence}\n     do: {f.action}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
