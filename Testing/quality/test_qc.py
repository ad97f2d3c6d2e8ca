"""The QC picture: its planes are those of the whole scans resampled onto the isotropic grid."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.quality import picture as qc
from CTAffineRegisterLib.quality.picture import PANEL_PIXELS, WINDOW_HU, qc_picture, write_qc_picture


def _whole_volume_planes(fixed: sitk.Image, registered: sitk.Image) -> list[tuple[np.ndarray, np.ndarray]]:
    """The straightforward way: both scans resampled whole onto the isotropic grid, middle planes taken."""
    size, spacing, origin, direction = qc._isotropic_grid(fixed)
    reference = sitk.Image(size, sitk.sitkFloat32)
    reference.SetSpacing([spacing] * 3)
    reference.SetOrigin([float(v) for v in origin])
    reference.SetDirection(direction)
    fixed_iso = sitk.Resample(
        fixed, reference, sitk.Transform(), sitk.sitkLinear, WINDOW_HU[0], sitk.sitkFloat32
    )
    registered_iso = sitk.Resample(registered, fixed_iso, sitk.Transform(), sitk.sitkLinear, WINDOW_HU[0])
    planes = []
    for axis in (0, 1, 2):
        pair = []
        for volume in (qc._windowed(fixed_iso), qc._windowed(registered_iso)):
            plane = np.take(volume, volume.shape[axis] // 2, axis=axis)
            pair.append(plane if axis == 0 else plane[::-1, :])
        planes.append((pair[0], pair[1]))
    return planes


def test_planes_match_whole_volume_resampling_on_an_oblique_pair(tmp_path):
    pair = synthetic.make_pair(
        seed=4,
        fixed_size=(70, 60, 30),
        fixed_spacing=(3.0, 3.2, 6.0),
        moving_direction=sitk.Euler3DTransform((0, 0, 0), 0.2, -0.1, 0.3).GetMatrix(),
        anatomy_scale=0.7,
    )
    fixed = pair.fixed
    registered = sitk.Resample(pair.moving, fixed, pair.true_transform, sitk.sitkLinear, -1000.0)
    picture = sitk.GetArrayFromImage(qc_picture(fixed, registered))
    assert picture.shape == (2 * PANEL_PIXELS, 3 * PANEL_PIXELS, 3)
    for index, (fixed_plane, registered_plane) in enumerate(_whole_volume_planes(fixed, registered)):
        height, width = fixed_plane.shape
        top, left = (PANEL_PIXELS - height) // 2, index * PANEL_PIXELS + (PANEL_PIXELS - width) // 2
        fusion = picture[PANEL_PIXELS + top : PANEL_PIXELS + top + height, left : left + width]
        assert np.array_equal(fusion[..., 0], fixed_plane)  # magenta: fixed
        assert np.array_equal(fusion[..., 1], registered_plane)  # green: registered
    assert fixed_plane.std() > 10  # a real picture, not a blank one
    write_qc_picture(fixed, registered, str(tmp_path / "qc.png"))
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(tmp_path / "qc.png"))), picture)
