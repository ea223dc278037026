"""A run's metrics as CSV, for a spreadsheet or pandas:

    python -m core.runs.metrics_csv RUN_DIR [-o FILE]     (to stdout without -o)

One row per metrics.jsonl line, one column per field (in the order fields first appear;
empty where a line lacks one, such as KID between measurements). Exit status 1 when
RUN_DIR is not a run folder.
"""
import argparse
import csv
import io
import sys
from pathlib import Path

from core import atomic
from core.runs.runfolder import RunFolder


def to_csv(rows: list[dict]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m core.runs.metrics_csv", description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path, help="the run folder (checkpoints/NAME)")
    p.add_argument("-o", "--out", type=Path, help="write the CSV here instead of to stdout")
    args = p.parse_args(argv)
    run = RunFolder(args.run)
    if not run.holds_run():
        print(f"error: {args.run} is not a run folder (no config.json or status.json)", file=sys.stderr)
        return 1
    text = to_csv(run.read_metrics())
    if args.out:
        try:
            atomic.write_text(args.out, text)
        except OSError as e:
            print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"wrote {text.count(chr(10)) - 1} rows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
