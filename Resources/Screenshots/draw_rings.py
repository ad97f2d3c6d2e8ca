"""Draw the README's picture of the problem: a plain resample's gray ring next to this project's result.

The demo pair of ``ct-affine-register demo`` (seed 0): dataset B's scan has -3024 padding outside its
circular field of view; it is put onto dataset A's grid (air background) once with a plain SimpleITK
resample (linear, default value -1024) and once by this library (padding replaced by air before
interpolating). Both use the same estimated transform, so only the handling of the padding differs.
The display window [-3100, 1500] HU shows what a full-range window (Slicer's automatic one on such a
scan) shows: padding black, air gray.

    pip install matplotlib      # for this script only; not a dependency of the project
    python Resources/Screenshots/draw_rings.py [--out Resources/Screenshots/rings.png]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import SimpleITK as sitk  # noqa: E402

from CTAffineRegisterLib import register_pair, synthetic  # noqa: E402

WINDOW = (-3100.0, 1500.0)
RING_HU = -1100.0  # as the demo and the benchmarks count them: below any air, inside A's field of view


def ring_voxels(image: sitk.Image, valid: sitk.Image) -> int:
    """Output voxels darker than air where dataset A holds real data: padding carried along."""
    pixels = sitk.GetArrayViewFromImage(image)
    return int(np.count_nonzero((pixels < RING_HU) & (sitk.GetArrayViewFromImage(valid) > 0)))


def _axial(image: sitk.Image, index: int) -> np.ndarray:
    return sitk.GetArrayViewFromImage(image)[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).with_name("rings.png")))
    arguments = parser.parse_args()

    pair = synthetic.make_pair(seed=0)
    result = register_pair(pair.fixed, pair.moving)
    plain = sitk.Resample(pair.moving, pair.fixed, result.transform, sitk.sitkLinear, -1024.0)
    plain_rings = ring_voxels(plain, pair.fixed_valid_mask)
    our_rings = ring_voxels(result.registered, pair.fixed_valid_mask)

    fixed_slice = pair.fixed.GetSize()[2] // 2
    centre = pair.fixed.TransformIndexToPhysicalPoint([0, 0, fixed_slice])
    moving_slice = pair.moving.TransformPhysicalPointToIndex(result.transform.TransformPoint(centre))[2]
    moving_slice = int(np.clip(moving_slice, 0, pair.moving.GetSize()[2] - 1))
    panels = [
        (_axial(pair.moving, moving_slice), "dataset B scan\n-3024 outside its field of view"),
        (_axial(plain, fixed_slice), f"plain resample onto A's grid\n{plain_rings:,} ring voxels"),
        (
            _axial(result.registered, fixed_slice),
            f"CTAffineRegister, same transform\n{our_rings} ring voxels",
        ),
    ]
    figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.9), dpi=100)
    for axis, (pixels, title) in zip(axes, panels):
        axis.imshow(pixels, cmap="gray", vmin=WINDOW[0], vmax=WINDOW[1], interpolation="nearest")
        axis.set_title(title, fontsize=10)
        axis.axis("off")
    figure.text(
        0.5,
        0.02,
        "Generated demo pair (ct-affine-register demo); window -3100..1500 HU. "
        "Drawn by Resources/Screenshots/draw_rings.py.",
        ha="center",
        fontsize=8,
        color="0.3",
    )
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    figure.savefig(arguments.out, bbox_inches="tight", pad_inches=0.1)
    print(f"wrote {arguments.out}: plain resample {plain_rings} ring voxels, ours {our_rings}")


if __name__ == "__main__":
    main()
