"""What the reading checks cost: ``read_image`` against a bare ``sitk.ReadImage`` of the same file.

Usage: python Testing/benchmarks/read_checks_speed.py [--slices 300] [--rounds 5]
A 512×512×N int16 CT phantom with -3024 FOV padding is written as .nii.gz, .nii and .nrrd; each
round reads each file both ways, alternating which goes first, and the medians are printed with
the load average (other work on the machine shows up in both columns alike). The last column is
the header check and the voxel CRC alone, on an image already read: less sensitive to that noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import SimpleITK as sitk

from CTAffineRegisterLib.io.file_integrity import check_file, verify_voxels
from CTAffineRegisterLib.io.images import read_image
from CTAffineRegisterLib.synthetic import insert_fov_padding, make_phantom


def _seconds(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()

    image = make_phantom(size=(512, 512, arguments.slices), spacing=(0.8, 0.8, 1.0), seed=1)
    image = insert_fov_padding(image, -3024, 200.0)
    with tempfile.TemporaryDirectory() as folder:
        paths = {}
        for suffix, compress in ((".nii.gz", True), (".nii", False), (".nrrd", True)):
            paths[suffix] = os.path.join(folder, "scan" + suffix)
            sitk.WriteImage(image, paths[suffix], compress)
        print(f"scan 512×512×{arguments.slices} int16; load average {os.getloadavg()[0]:.1f} at start")
        print(
            f"{'file':<8} {'sitk.ReadImage s':>17} {'read_image s':>13} {'extra':>7} {'checks alone s':>15}"
        )
        for suffix, path in paths.items():
            bare, checked = [], []
            for round_index in range(arguments.rounds):
                order = (bare, checked) if round_index % 2 == 0 else (checked, bare)
                for times in order:
                    reader = (
                        (lambda p=path: sitk.ReadImage(p))
                        if times is bare
                        else (lambda p=path: read_image(p))
                    )
                    times.append(_seconds(reader))
            plain, full = statistics.median(bare), statistics.median(checked)
            read = sitk.ReadImage(path)
            alone = statistics.median(
                _seconds(lambda p=path, image=read: verify_voxels(p, check_file(p), image))
                for _ in range(arguments.rounds)
            )
            print(
                f"{suffix:<8} {plain:17.3f} {full:13.3f} {100 * (full - plain) / plain:6.0f}% {alone:15.3f}"
            )
        print(f"load average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
