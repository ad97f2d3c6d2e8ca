"""What the verdict and the last stage (``optimum_refinement``) cost per case, on the development set.

For each pair of ``interpatient_dev.py``: the whole ``register_pair`` time, the last stage's own time
(its descents on HU correlation, probes and closing polish: ``registration.refine_seconds``)
and the verdict's (measured apart, the same call the registration makes), and their share of the
case; and how many starts ran to the end (two when the best start was scaled to the bodies' sizes).
The issue's budget: verdict plus any refinement at most 15 % of a case's time.

    python Testing/benchmarks/refinement_cost.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from interpatient_dev import development_pairs  # noqa: E402
from verdict_accuracy import Judge  # noqa: E402

from CTAffineRegisterLib.pair.register import register_pair  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the first four pairs only")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.1f}")
    print("| pair | starts | case s | last stage s | verdict s | share of the case |")
    print("|---|---|---|---|---|---|")
    totals = [0.0, 0.0, 0.0]
    for name, ((fixed, _), (moving, _)) in development_pairs(args.quick).items():
        started = time.perf_counter()
        result = register_pair(fixed, moving)
        case = time.perf_counter() - started
        refinement = result.report["registration"].get("refine_seconds") or 0.0
        judge = Judge(fixed, moving)
        started = time.perf_counter()
        judge(result.transform)
        verdict = time.perf_counter() - started
        totals = [totals[0] + case, totals[1] + refinement, totals[2] + verdict]
        share = 100.0 * (refinement + verdict) / case
        starts = 2 if "of 2 starts" in result.report["registration"]["initialization"] else 1
        print(
            f"| {name} | {starts} | {case:.2f} | {refinement:.2f} | {verdict:.2f} | {share:.0f} % |",
            flush=True,
        )
    share = 100.0 * (totals[1] + totals[2]) / totals[0]
    print(f"| all | | {totals[0]:.1f} | {totals[1]:.1f} | {totals[2]:.1f} | {share:.0f} % |")
    print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
