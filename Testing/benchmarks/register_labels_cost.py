"""What ``register --moving-labels`` adds to a case's wall time, through the command line.

Usage: python Testing/benchmarks/register_labels_cost.py [--data DIR] [--repeats 5]

On the real chest pair in ``nsclc_radiomics/`` (LUNG1-003 and its 5 structures onto LUNG1-001), the
same ``register`` command runs with and without ``--moving-labels``, alternately (A, B, A, B ...) so
that a change of machine load hits both alike, each time in a fresh process into an empty folder
with ``--jobs 1``. Printed: the case's own seconds (``S_report.json``: reading, registration,
resampling, QC picture and every output written) and the whole command's wall time, medians over the
repeats, and the share the labels add. That difference is smaller than the noise of a shared machine,
so the case report's ``labels_seconds`` (reading, checking, carrying and writing the label map, timed
inside the case) is printed as a share of the case too. The issue's target is under 10 %.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("CTAR_SHARED_DATA", str(DEFAULT_DATA)))
    parser.add_argument("--repeats", type=int, default=5)
    arguments = parser.parse_args()
    folder = Path(arguments.data) / "nsclc_radiomics"
    if not folder.is_dir():
        raise SystemExit(f"{folder} not found: this benchmark needs the shared NSCLC-Radiomics pair")
    fixed, moving = folder / "LUNG1-001_ct.nii.gz", folder / "LUNG1-003_ct.nii.gz"
    labels = folder / "LUNG1-003_labels.nii.gz"
    print(f"load average at start: {_load()}")
    figures: dict[str, dict[str, list[float]]] = {"without": {}, "with": {}}
    for repeat in range(arguments.repeats):
        for variant in ("without", "with") if repeat % 2 == 0 else ("with", "without"):
            extra = ["--moving-labels", str(labels)] if variant == "with" else []
            case, wall, labels_seconds = _run(fixed, moving, extra)
            figures[variant].setdefault("case", []).append(case)
            figures[variant].setdefault("wall", []).append(wall)
            line = f"  run {repeat + 1} {variant:>7} labels: case {case:.2f} s, command {wall:.2f} s"
            if labels_seconds is not None:
                figures[variant].setdefault("share", []).append(100.0 * labels_seconds / case)
                line += f", labels {labels_seconds:.3f} s of it"
            print(line, flush=True)
    print(f"load average at end: {_load()}\n")
    print("| | without labels | with labels | added |")
    print("|---|---|---|---|")
    for key, title in (("case", "case seconds (its report)"), ("wall", "whole command, wall seconds")):
        without = statistics.median(figures["without"][key])
        with_labels = statistics.median(figures["with"][key])
        share = 100.0 * (with_labels - without) / without
        added = f"{with_labels - without:+.2f} s ({share:+.1f} %)"
        print(f"| {title} | {without:.2f} | {with_labels:.2f} | {added} |")
    shares = figures["with"]["share"]
    spread = f"{min(shares):.1f}-{max(shares):.1f} %"
    print(f"\nlabels_seconds / case seconds: median {statistics.median(shares):.1f} % ({spread})")


def _run(fixed: Path, moving: Path, extra: list[str]) -> tuple[float, float, Optional[float]]:
    with tempfile.TemporaryDirectory(prefix="register-labels-cost-") as out:
        command = [
            sys.executable,
            "-m",
            "CTAffineRegisterLib.cli",
            "register",
            "--fixed",
            str(fixed),
        ]
        command += ["--moving", str(moving), *extra, "--out", out, "--jobs", "1", "--quiet"]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        if done.returncode not in (0, 1):
            raise SystemExit(f"register failed ({done.returncode}): {done.stderr}")
        report = json.loads((Path(out) / f"{moving.name[: -len('_ct.nii.gz')]}_ct_report.json").read_text())
        if report["status"] != "ok" or (extra and "labels" not in report["outputs"]):
            raise SystemExit(f"the case did not finish with its outputs: {report.get('error')}")
        return float(report["seconds"]), wall, report.get("labels_seconds")


def _load() -> str:
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    main()
