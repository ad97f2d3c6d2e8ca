"""Where this project spends its time on one case: cProfile of read → register → resample.

Run from the project root::

    /tmp/venv/bin/python Testing/benchmarks/profile_ours.py                 # the headline case
    /tmp/venv/bin/python Testing/benchmarks/profile_ours.py --case torso-3024-moving --top 30
    /tmp/venv/bin/python Testing/benchmarks/profile_ours.py --size 512 512 300

Prints the functions with the largest cumulative time. Most time sits inside SimpleITK calls
(C++), which cProfile attributes to the Python line that called them, so the table reads as
"which step of ours costs what".
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import tempfile
from pathlib import Path

import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _worker  # noqa: E402
import cases as case_builder  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", default="headline", help="name fragment of a compare.py case")
    parser.add_argument(
        "--size", type=int, nargs=3, default=None, help="a scaling.py phantom of this size instead"
    )
    parser.add_argument("--top", type=int, default=25, help="rows to print")
    parser.add_argument(
        "--sort", choices=("cumulative", "tottime"), default="cumulative", help="order of the rows"
    )
    args = parser.parse_args(argv)
    if args.size:
        import scaling

        case = scaling.size_case(tuple(args.size), seed=100)
    else:
        case = case_builder.build_cases(only=[args.case])[0]
    with tempfile.TemporaryDirectory(prefix="ctar-profile-") as directory:
        fixed, moving = Path(directory) / "fixed.mha", Path(directory) / "moving.mha"
        sitk.WriteImage(case.fixed, str(fixed), useCompression=False)
        sitk.WriteImage(case.moving, str(moving), useCompression=False)
        profiler = cProfile.Profile()
        profiler.enable()
        _, _, seconds = _worker.ours(str(fixed), str(moving))
        profiler.disable()
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    print(f"{case.name}: register + resample {seconds:.2f} s (SimpleITK threads: {threads})")
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text).sort_stats(args.sort)
    stats.print_stats(r"CTAffineRegisterLib|SimpleITK", args.top)
    print(text.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
