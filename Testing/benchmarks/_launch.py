"""Run a command and report its own peak memory, free of the benchmark process's footprint.

A child forked from the (large) benchmark process inherits that process's resident-set high-water
mark, so ``ru_maxrss`` from the benchmark's own ``wait4`` would report at least the benchmark's size.
This small launcher is that child; the tool is forked from it, so the tool's ``ru_maxrss`` starts
from the launcher's few megabytes. Usage: ``python _launch.py REPORT.json COMMAND...``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def main(argv: list[str]) -> int:
    report, command = argv[1], argv[2:]
    start = time.perf_counter()
    process = subprocess.Popen(command)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    with open(report, "w") as sink:
        json.dump({"wall_s": wall, "maxrss_kb": usage.ru_maxrss, "returncode": code}, sink)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
