"""Wall time of the whole test suite at two revisions, run alternately (A B B A ...) on one machine.

Usage: python Testing/benchmarks/suite_time.py [REV ...] [--rounds 2]
       python Testing/benchmarks/suite_time.py 663d0eb work     # a commit against the working tree

Each revision (a git commit, or ``work`` for this folder as it is) is exported to a temporary folder
and its own ``Testing/`` suite runs there with its own ``CTAffineRegister`` first on PYTHONPATH, as
``python -m pytest -q -p no:cacheprovider``. Rounds alternate which revision goes first, so other
work on the machine weighs on both alike; the load average is printed beside every run. The real CT
samples are used when the suite finds them (``CTAR_SHARED_DATA`` or ``../shared/data``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PROJECT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def export(revision: str, folder: str) -> str:
    target = os.path.join(folder, revision.replace("/", "_"))
    if revision == "work":
        ignored = shutil.ignore_patterns(".git", "__pycache__", ".pytest_cache", ".ruff_cache", ".venv")
        shutil.copytree(PROJECT, target, ignore=ignored)
        return target
    os.makedirs(target)
    archive = subprocess.run(["git", "-C", PROJECT, "archive", revision], capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", target], input=archive.stdout, check=True)
    return target


def run_suite(tree: str) -> tuple[float, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.join(tree, "CTAffineRegister") + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.setdefault("CTAR_SHARED_DATA", os.path.join(os.path.dirname(PROJECT), "shared", "data"))
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    summary = re.findall(r"^=*\s*(\d+ (?:passed|failed).*?) in [\d.]+s", done.stdout, re.MULTILINE)
    return seconds, (summary[-1] if summary else f"exit {done.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("revisions", nargs="*", default=["HEAD", "work"])
    parser.add_argument("--rounds", type=int, default=2)
    arguments = parser.parse_args()
    times: dict[str, list[float]] = {revision: [] for revision in arguments.revisions}
    with tempfile.TemporaryDirectory(prefix="suite-time-") as folder:
        trees = {revision: export(revision, folder) for revision in arguments.revisions}
        for round_index in range(arguments.rounds):
            order = arguments.revisions if round_index % 2 == 0 else arguments.revisions[::-1]
            for revision in order:
                load = os.getloadavg()[0]
                seconds, summary = run_suite(trees[revision])
                times[revision].append(seconds)
                figures = f"{seconds:6.1f} s  load {load:.2f}  ({summary})"
                print(f"round {round_index + 1}  {revision:<12} {figures}", flush=True)
    for revision, values in times.items():
        print(f"{revision:<12} median {statistics.median(values):6.1f} s over {len(values)} runs")


if __name__ == "__main__":
    main()
