"""Does ``reference`` rank at reduced quality as at full quality, and at what share of the cost?

Candidates (the sample is the candidates themselves, as ``reference`` does by default): the two
real chests of different patients (``nsclc_radiomics``), the TotalSegmentator torso, and two
derived from the real chests: one cut by a -3024 circle of 130 mm radius (the field of view cuts
the body) and a slab of the first 40 % of the slices (part of the chest). Every sample scan is
registered onto every candidate twice, in one process each (``--jobs 1``): at ``quality="ranking"``
(scans read at about 6 mm, two coarse levels, no last refinement) and at ``quality="full"``
(``register``'s own settings, only the images not written: a stricter comparison than a full
cohort). Prints both rankings, whether they agree, and the cost ratio (the issue asks ≤ 25 %).

    python Testing/benchmarks/reference_cost.py [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import SimpleITK as sitk

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from support.reference_scans import circle_cut, z_slab  # noqa: E402

from CTAffineRegisterLib import choose_reference  # noqa: E402

DATA = Path(os.environ.get("CTAR_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def candidates(workdir: Path) -> list[str]:
    """The five candidate scans (the derived ones written into ``workdir``)."""
    first = DATA / "nsclc_radiomics" / "LUNG1-001_ct.nii.gz"
    second = DATA / "nsclc_radiomics" / "LUNG1-003_ct.nii.gz"
    torso = DATA / "totalsegmentator" / "example_ct.nii.gz"
    cut, slab = workdir / "LUNG1-003_cut.nii.gz", workdir / "LUNG1-001_slab.nii.gz"
    sitk.WriteImage(circle_cut(sitk.ReadImage(str(second))), str(cut))
    sitk.WriteImage(z_slab(sitk.ReadImage(str(first))), str(slab))
    return [str(first), str(second), str(torso), str(cut), str(slab)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir", help="where the derived scans and both rankings go (default: a temporary folder)"
    )
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="reference-cost-"))
    workdir.mkdir(parents=True, exist_ok=True)
    scans = candidates(workdir)
    print(f"load average at start: {os.getloadavg()[0]:.1f}; {len(scans)} candidates = the sample")
    results = {}
    for quality in ("ranking", "full"):
        started = time.perf_counter()
        ranking = choose_reference(scans, workdir / quality, quality=quality, jobs=1, overwrite=True)
        seconds = time.perf_counter() - started
        pair_seconds = sum(
            pair_time(workdir / quality, pair["report"])
            for candidate in ranking["candidates"]
            for pair in candidate["pair_results"]
        )
        results[quality] = (ranking, seconds, pair_seconds)
        print(f"\n{quality}: {seconds:.1f} s in all, {pair_seconds:.1f} s in the pairs")
        print("| rank | candidate | score | fit | coverage | ranked last because |")
        print("|---|---|---|---|---|---|")
        for row in ranking["candidates"]:
            print(
                f"| {row['rank']} | {row['id']} | {row['score']} | {row['fit']} | {row['coverage']} "
                f"| {row['ranked_last_because'] or ''} |"
            )
    order = {quality: [row["id"] for row in results[quality][0]["candidates"]] for quality in results}
    same = order["ranking"] == order["full"]
    print(f"\nsame order at both qualities: {'yes' if same else 'NO'}")
    print(f"  ranking: {order['ranking']}\n  full:    {order['full']}")
    ratio = results["ranking"][1] / results["full"][1]
    pair_ratio = results["ranking"][2] / results["full"][2]
    print(
        f"cost of ranking quality / full quality: {ratio:.1%} of the whole run, {pair_ratio:.1%} of the pairs"
    )
    print(f"issue's budget (≤ 25 %): {'met' if ratio <= 0.25 else 'NOT met'}")


def pair_time(out_dir: Path, report: str) -> float:
    """The seconds one pair's report recorded."""
    import json

    return float(json.loads((out_dir / report).read_text())["seconds"])


if __name__ == "__main__":
    main()
