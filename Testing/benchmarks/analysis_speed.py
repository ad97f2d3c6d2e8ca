"""How long the background analysis takes on a 512×512×300 int16 scan, next to reading that scan.

Usage: python Testing/benchmarks/analysis_speed.py [--slices 300] [--repeats 3]
Prints the median of the repeats for reading (.nii.gz and raw .nrrd) and for the analysis.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.synthetic import insert_fov_padding, make_phantom


def _median_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    arguments = parser.parse_args()

    image = make_phantom(size=(512, 512, arguments.slices), spacing=(0.8, 0.8, 1.0), seed=1)
    image = insert_fov_padding(image, -3024, 200.0)
    with tempfile.TemporaryDirectory() as folder:
        compressed = os.path.join(folder, "scan.nii.gz")
        raw = os.path.join(folder, "scan.nrrd")
        sitk.WriteImage(image, compressed, True)
        sitk.WriteImage(image, raw, False)
        read_compressed = _median_seconds(lambda: sitk.ReadImage(compressed), arguments.repeats)
        read_raw = _median_seconds(lambda: sitk.ReadImage(raw), arguments.repeats)
    analysis = analyze_background(image)
    analyse = _median_seconds(lambda: analyze_background(image), arguments.repeats)
    size = "×".join(str(n) for n in image.GetSize())
    print(f"scan {size} int16, {image.GetNumberOfPixels() / 1e6:.0f} M voxels: {analysis.summary}")
    print(f"read .nii.gz        {read_compressed:6.2f} s")
    print(f"read raw .nrrd      {read_raw:6.2f} s")
    print(f"analyze_background  {analyse:6.2f} s  ({analyse / read_compressed:.2f}× the .nii.gz read)")
    print(f"threads: {sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()}, numpy {np.__version__}")


if __name__ == "__main__":
    main()
