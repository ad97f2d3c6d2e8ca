"""Label maps carried onto the fixed grid: values, pixel type, thin structures, grids, refusals."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample

from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.resample.labels import (
    MAX_LABEL_COUNT,
    METHODS,
    LabelError,
    carry_labels,
    check_label_image,
    check_labels_overlap,
    label_dice,
    read_label_map,
    resample_labels,
)
from CTAffineRegisterLib.synthetic import random_affine


def _grid(size, spacing, origin, pixel_type=sitk.sitkUInt8, direction=None) -> sitk.Image:
    image = sitk.Image([int(n) for n in size], pixel_type)
    image.SetSpacing([float(s) for s in spacing])
    image.SetOrigin([float(o) for o in origin])
    if direction is not None:
        image.SetDirection([float(d) for d in direction])
    return image


def _physical_points(image: sitk.Image) -> np.ndarray:
    """(z, y, x, 3) physical position of every voxel centre."""
    size = image.GetSize()
    z, y, x = np.meshgrid(*[np.arange(n) for n in size[::-1]], indexing="ij")
    indices = np.stack([x, y, z], axis=-1).astype(float)
    direction = np.array(image.GetDirection()).reshape(3, 3)
    return (indices * np.array(image.GetSpacing())) @ direction.T + np.array(image.GetOrigin())


def _draw(image: sitk.Image, shapes, mapping=None) -> sitk.Image:
    """Rasterise analytic shapes (value, kind, centre, axis, radius) at voxel centres, as contours are.

    ``mapping`` (a fixed→moving affine) draws the moving anatomy as seen on a fixed grid: the truth.
    """
    points = _physical_points(image)
    if mapping is not None:
        matrix = np.array(mapping.GetMatrix()).reshape(3, 3)
        center = np.array(mapping.GetCenter())
        points = (points - center) @ matrix.T + center + np.array(mapping.GetTranslation())
    dtype = sitk.GetArrayViewFromImage(image).dtype
    array = np.zeros(points.shape[:3], dtype=dtype)
    for value, kind, center, axis, radius in shapes:
        offset = points - np.asarray(center, dtype=float)
        if kind == "tube":
            along = offset @ np.asarray(axis)
            across = np.linalg.norm(offset - along[..., None] * np.asarray(axis), axis=-1)
            inside = (across < radius) & (np.abs(along) < 35.0)
        else:
            inside = np.linalg.norm(offset, axis=-1) < radius
        array[inside] = value
    result = sitk.GetImageFromArray(array)
    result.CopyInformation(image)
    return result


def _values(image: sitk.Image) -> set[int]:
    return set(np.unique(sitk.GetArrayViewFromImage(image)).tolist())


MOVING = dict(size=(60, 60, 40), spacing=(2.0, 2.0, 3.0), origin=(-60.0, -60.0, -60.0))
FIXED = dict(size=(64, 64, 48), spacing=(1.9, 1.9, 2.5), origin=(-61.0, -60.3, -59.0))


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=float)
    return vector / np.linalg.norm(vector)


# --- values and pixel type ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "pixel_type, values",
    [
        (sitk.sitkUInt8, (1, 2, 200)),
        (sitk.sitkUInt16, (3, 300, 4000)),
        (sitk.sitkInt16, (-5, 7, 1200)),
        (sitk.sitkUInt32, (10, 70000, 5)),
        (sitk.sitkInt64, (2, 3, 2**40)),
    ],
)
def test_values_and_pixel_type_survive(pixel_type, values):
    shapes = [
        (values[0], "ball", (-10.0, 0.0, 0.0), None, 14.0),
        (values[1], "ball", (12.0, 5.0, 0.0), None, 10.0),  # overlaps the first: they touch
        (values[2], "tube", (0.0, -20.0, 0.0), _unit((0.2, 0.1, 1.0)), 3.0),
    ]
    moving = _draw(_grid(**MOVING, pixel_type=pixel_type), shapes)
    transform = random_affine(np.random.default_rng(3), max_translation_mm=6.0)
    result = resample_labels(moving, _grid(**FIXED), transform)
    assert result.GetPixelID() == pixel_type
    assert result.GetSize() == tuple(FIXED["size"]) and result.GetSpacing() == FIXED["spacing"]
    assert _values(result) == {0, *values}  # every structure still there, nothing else appears


def test_no_value_appears_between_touching_labels():
    """Interpolating the label values themselves would put 3 between 1 and 5; the arg-max never does."""
    moving = _grid(**MOVING)
    array = np.zeros(moving.GetSize()[::-1], np.uint8)
    array[5:35, 10:50, 10:30] = 1
    array[5:35, 10:50, 30:50] = 5  # 1 and 5 share a face
    labels = sitk.GetImageFromArray(array)
    labels.CopyInformation(moving)
    transform = random_affine(np.random.default_rng(5), max_translation_mm=4.0)
    plain = sitk.Resample(labels, _grid(**FIXED), transform, sitk.sitkLinear, 0, sitk.sitkUInt8)
    assert 3 in _values(plain)  # the trap is real on this geometry
    carried = resample_labels(labels, _grid(**FIXED), transform)
    assert _values(carried) == {0, 1, 5}
    # the two structures keep about their volume (ml), neither eats the other
    voxel_ml = np.prod(FIXED["spacing"]) / 1000.0
    for value in (1, 5):
        volume = np.count_nonzero(sitk.GetArrayViewFromImage(carried) == value) * voxel_ml
        expected = np.count_nonzero(array == value) * np.prod(MOVING["spacing"]) / 1000.0
        expected *= abs(np.linalg.det(np.array(transform.GetMatrix()).reshape(3, 3))) ** -1
        assert volume == pytest.approx(expected, rel=0.06)


def test_renumbering_touching_structures_does_not_move_their_boundary():
    """Where two touching structures both reach their level (a vessel along an organ, two organs
    pressed together), the one with the larger share there wins: which of the two has the higher
    label number (the atlas's order) must not decide who gets the boundary voxels."""
    vessel_along_organ = [
        ("tube", (0.0, 0.0, 0.0), _unit((0.1, 0.2, 1.0)), 2.0),
        ("ball", (-14.0, 0.0, 0.0), None, 13.0),
    ]
    organs_touching = [("ball", (-10.0, 0.0, 0.0), None, 14.0), ("ball", (12.0, 5.0, 0.0), None, 10.0)]
    moved = 0
    for geometry in (vessel_along_organ, organs_touching):
        for seed in range(4):
            transform = random_affine(np.random.default_rng(seed), max_translation_mm=6.0)
            numbered, renumbered = (
                sitk.GetArrayFromImage(
                    resample_labels(
                        _draw(_grid(**MOVING), [(value, *shape) for value, shape in zip(values, geometry)]),
                        _grid(**FIXED),
                        transform,
                    )
                )
                for values in ((1, 2), (2, 1))
            )
            assert _values(sitk.GetImageFromArray(numbered)) == {0, 1, 2}
            moved += np.count_nonzero(numbered != np.choose(renumbered, [0, 2, 1]))  # 1 <-> 2 swapped back
    assert moved == 0


def test_identity_on_the_same_grid_is_an_exact_copy():
    shapes = [(4, "ball", (0.0, 0.0, 0.0), None, 15.0), (9, "tube", (5.0, 5.0, 0.0), _unit((1, 1, 3)), 2.5)]
    labels = _draw(_grid(**MOVING, pixel_type=sitk.sitkUInt16), shapes)
    carried = resample_labels(labels, labels, sitk.Transform(3, sitk.sitkIdentity))
    assert np.array_equal(sitk.GetArrayViewFromImage(carried), sitk.GetArrayViewFromImage(labels))


def test_empty_label_map_stays_empty():
    empty = _grid(**MOVING, pixel_type=sitk.sitkUInt16)
    carried = resample_labels(empty, _grid(**FIXED), random_affine(np.random.default_rng(1)))
    assert carried.GetPixelID() == sitk.sitkUInt16 and _values(carried) == {0}


# --- thin structures ----------------------------------------------------------------------------


def test_thin_structures_match_the_truth_better_than_nearest_neighbour():
    """Tubes 1.5–3 mm in radius on 2 mm voxels, moved by known affines; the truth is drawn on the
    fixed grid from the same analytic shapes. The arg-max must beat nearest neighbour on each."""
    rng = np.random.default_rng(7)
    radii = (1.5, 2.0, 3.0)
    gains = {radius: [] for radius in radii}
    for _ in range(3):
        shapes = [
            (index + 1, "tube", rng.uniform(-15, 15, 3), _unit(rng.normal(size=3) + (0, 0, 2)), radius)
            for index, radius in enumerate(radii)
        ]
        transform = random_affine(rng, max_translation_mm=5.0)
        moving = _draw(_grid(**MOVING), shapes)
        truth = _draw(_grid(**FIXED), shapes, mapping=transform)
        ours = label_dice(resample_labels(moving, truth, transform), truth, [1, 2, 3])
        nearest = label_dice(resample_labels(moving, truth, transform, "nearest"), truth, [1, 2, 3])
        for index, radius in enumerate(radii):
            gains[radius].append(ours[index + 1] - nearest[index + 1])
    for radius, values in gains.items():
        assert np.mean(values) > 0.03, f"tube r={radius} mm: Dice gains over nearest neighbour {values}"
        assert min(values) > 0.0, f"tube r={radius} mm: worse than nearest neighbour in one case {values}"


# --- grids and transforms -----------------------------------------------------------------------


def _flipped_and_cropped(labels: sitk.Image) -> sitk.Image:
    """The same voxels in the same places, stored on another grid: x reversed and the border cropped."""
    array = sitk.GetArrayFromImage(labels)[2:-2, 3:-3, ::-1][:, :, 4:-4]
    size = labels.GetSize()
    first = labels.TransformIndexToPhysicalPoint([size[0] - 1 - 4, 3, 2])
    direction = np.array(labels.GetDirection()).reshape(3, 3)
    direction[:, 0] *= -1
    other = sitk.GetImageFromArray(np.ascontiguousarray(array))
    other.SetSpacing(labels.GetSpacing())
    other.SetDirection(direction.ravel().tolist())
    other.SetOrigin(first)
    return other


def test_labels_on_another_grid_than_their_scan_give_the_same_result():
    scan = _grid(**MOVING, pixel_type=sitk.sitkInt16)
    shapes = [
        (1, "ball", (0.0, 0.0, 0.0), None, 18.0),
        (2, "tube", (10.0, -8.0, 0.0), _unit((0, 0.3, 1)), 3.0),
    ]
    on_scan_grid = _draw(_grid(**MOVING), shapes)
    elsewhere = _flipped_and_cropped(on_scan_grid)
    assert elsewhere.GetSize() != on_scan_grid.GetSize() and elsewhere.GetDirection() != scan.GetDirection()
    fixed = _grid(**FIXED)
    transform = random_affine(np.random.default_rng(11), max_translation_mm=5.0)
    assert check_labels_overlap(elsewhere, scan) == 1.0
    expected = sitk.GetArrayFromImage(carry_labels(on_scan_grid, scan, fixed, transform))
    carried = sitk.GetArrayFromImage(carry_labels(elsewhere, scan, fixed, transform))
    # same samples, so the same answer; rounding in the interpolation weights may decide a rare tie
    assert np.count_nonzero(carried != expected) <= 0.001 * expected.size
    assert label_dice(sitk.GetImageFromArray(carried), sitk.GetImageFromArray(expected.copy()))[2] > 0.99


def test_labels_outside_their_scan_are_refused():
    scan = _grid(**MOVING, pixel_type=sitk.sitkInt16)
    labels = _draw(_grid(**MOVING), [(1, "ball", (0.0, 0.0, 0.0), None, 15.0)])
    lost_geometry = sitk.GetImageFromArray(sitk.GetArrayFromImage(labels))  # origin 0, spacing 1
    lost_geometry.SetOrigin((200.0, 0.0, 0.0))
    with pytest.raises(LabelError, match="not in the scan's physical space") as refusal:
        carry_labels(lost_geometry, scan, _grid(**FIXED), sitk.Transform(3, sitk.sitkIdentity))
    assert "none of the labelled voxels" in refusal.value.reason and "mm" in refusal.value.reason
    shifted = sitk.Image(labels)
    shifted.SetOrigin((-60.0 + 70.0, -60.0, -60.0))  # most of the ball now beyond the scan's edge
    with pytest.raises(LabelError, match=r"only \d+% of the labelled voxels"):
        check_labels_overlap(shifted, scan)
    partly = sitk.Image(labels)
    partly.SetOrigin((-60.0 + 54.0, -60.0, -60.0))  # the ball's centre 5 mm inside the scan's edge
    assert 0.6 < check_labels_overlap(partly, scan) < 0.9


def test_non_linear_transform_gives_the_same_as_its_linear_equal():
    """A displacement field reproducing an affine exactly: the whole-grid path agrees with the box path."""
    shapes = [(1, "ball", (0.0, 0.0, 0.0), None, 14.0), (2, "tube", (8.0, 8.0, 0.0), _unit((0.1, 0, 1)), 2.5)]
    labels = _draw(_grid(**MOVING), shapes)
    fixed = _grid(**FIXED)
    affine = random_affine(np.random.default_rng(2), max_translation_mm=5.0)
    field_grid = _grid((36, 36, 30), (4.0, 4.0, 4.5), (-70.0, -70.0, -65.0))
    points = _physical_points(field_grid)
    matrix = np.array(affine.GetMatrix()).reshape(3, 3)
    center = np.array(affine.GetCenter())
    displacement = (points - center) @ matrix.T + center + np.array(affine.GetTranslation()) - points
    field = sitk.GetImageFromArray(displacement, isVector=True)
    field.CopyInformation(field_grid)
    non_linear = sitk.DisplacementFieldTransform(sitk.Cast(field, sitk.sitkVectorFloat64))
    assert not non_linear.IsLinear()
    expected = sitk.GetArrayFromImage(resample_labels(labels, fixed, affine))
    carried = sitk.GetArrayFromImage(resample_labels(labels, fixed, non_linear))
    assert np.count_nonzero(carried != expected) <= 0.001 * expected.size
    assert _values(sitk.GetImageFromArray(carried.copy())) == {0, 1, 2}


def test_each_structure_resampled_over_its_box_gives_what_the_whole_grid_gives(monkeypatch):
    """The boxes only save work: every fixed voxel a structure's share can reach lies in its box, also
    on a fixed grid finer than the label map's (a 2 mm map carried to a 0.9 mm scan)."""
    import CTAffineRegisterLib.resample.labels as labels_module

    shapes = [
        (1, "ball", (-12.0, 3.0, 0.0), None, 11.0),
        (2, "tube", (8.0, -6.0, 2.0), _unit((0.3, 0.2, 1.0)), 2.0),
        (3, "ball", (15.0, 14.0, -8.0), None, 4.0),
    ]
    labels = _draw(_grid(**MOVING), shapes)
    fixed = _grid((100, 100, 50), (0.9, 0.9, 1.2), (-45.0, -44.0, -30.0))
    transform = random_affine(np.random.default_rng(4), max_rotation_deg=12.0, max_translation_mm=5.0)
    boxed = sitk.GetArrayFromImage(resample_labels(labels, fixed, transform))
    whole = tuple(slice(0, size) for size in fixed.GetSize()[::-1])
    monkeypatch.setattr(labels_module, "_fixed_region", lambda *arguments: whole)
    everywhere = sitk.GetArrayFromImage(resample_labels(labels, fixed, transform))
    assert _values(sitk.GetImageFromArray(everywhere)) == {0, 1, 2, 3}
    assert np.array_equal(boxed, everywhere)


def test_composite_of_linear_transforms_is_handled_like_one_affine():
    labels = _draw(_grid(**MOVING), [(3, "ball", (5.0, 0.0, 0.0), None, 12.0)])
    first = random_affine(np.random.default_rng(8), max_translation_mm=4.0)
    second = sitk.Euler3DTransform((0, 0, 0), 0.05, -0.03, 0.1, (2.0, -1.0, 3.0))
    composite = sitk.CompositeTransform([second, first])
    single = sitk.AffineTransform(3)
    probe = np.eye(4)[:, :3] * 50.0
    mapped = np.array([composite.TransformPoint(point.tolist()) for point in probe])
    single.SetMatrix(((mapped[:3] - mapped[3]) / 50.0).T.ravel().tolist())
    single.SetTranslation(mapped[3].tolist())
    expected = sitk.GetArrayFromImage(resample_labels(labels, _grid(**FIXED), single))
    carried = sitk.GetArrayFromImage(resample_labels(labels, _grid(**FIXED), composite))
    assert np.count_nonzero(expected == 3) > 500
    assert np.count_nonzero(carried != expected) <= 0.001 * expected.size


# --- what is not a label map --------------------------------------------------------------------


def test_float_vector_and_scan_images_are_refused_with_a_reason():
    labels = _draw(_grid(**MOVING), [(1, "ball", (0.0, 0.0, 0.0), None, 15.0)])
    with pytest.raises(LabelError, match="integer pixel type"):
        check_label_image(sitk.Cast(labels, sitk.sitkFloat32))
    with pytest.raises(LabelError, match="3 components per voxel"):
        check_label_image(sitk.Compose(labels, labels, labels))
    scan = sitk.GetImageFromArray(
        np.random.default_rng(0).integers(-1024, 2000, (20, 40, 40)).astype(np.int16)
    )
    with pytest.raises(LabelError, match=f"more than {MAX_LABEL_COUNT} distinct values"):
        check_label_image(scan)
    small_ct = sitk.GetImageFromArray(np.array([[[-1024, 40], [300, -1000]]] * 3, dtype=np.int16))
    with pytest.raises(LabelError, match="values down to -1024, as a CT in HU does"):
        check_label_image(small_ct)
    assert check_label_image(small_ct + 1100) == [76, 100, 1140, 1400]
    with pytest.raises(LabelError, match="values down to -1000, as a CT in HU does"):  # air, exactly
        check_label_image(small_ct + 24)
    with pytest.raises(LabelError, match="integer pixel type"):
        resample_labels(sitk.Cast(labels, sitk.sitkFloat64), labels, sitk.Transform(3, sitk.sitkIdentity))
    assert check_label_image(labels) == [1]


def test_unknown_method_is_refused():
    labels = _draw(_grid(**MOVING), [(1, "ball", (0.0, 0.0, 0.0), None, 15.0)])
    with pytest.raises(ValueError, match="method"):
        resample_labels(labels, labels, sitk.Transform(3, sitk.sitkIdentity), method="bspline")


# --- real contours ------------------------------------------------------------------------------


def test_real_contours_keep_their_values_and_volumes():
    """LUNG1-003's five structures (lungs, cord, heart, esophagus) through a known affine onto a grid
    like LUNG1-001's: every structure arrives, in uint8, with the volume the affine gives it."""
    labels = sitk.ReadImage(str(shared_sample("nsclc_radiomics/LUNG1-003_labels.nii.gz")))
    other = sitk.ReadImage(str(shared_sample("nsclc_radiomics/LUNG1-001_ct.nii.gz")))
    center = labels.TransformContinuousIndexToPhysicalPoint([(n - 1) / 2 for n in labels.GetSize()])
    transform = random_affine(np.random.default_rng(4), max_translation_mm=8.0, center=center)
    # LUNG1-001's spacing, over LUNG1-003's anatomy with room for the rotated cord's ends
    grid = sitk.Image([256, 256, 150], sitk.sitkUInt8)
    grid.SetSpacing(other.GetSpacing())
    grid.SetOrigin(np.add(labels.GetOrigin(), (1.3, -0.7, -60.0)).tolist())
    carried = resample_labels(labels, grid, transform)
    assert carried.GetPixelID() == sitk.sitkUInt8 and _values(carried) == {0, 1, 2, 3, 4, 5}
    scale = abs(np.linalg.det(np.array(transform.GetMatrix()).reshape(3, 3)))
    ratio = np.prod(labels.GetSpacing()) / np.prod(grid.GetSpacing()) / scale
    source, result = sitk.GetArrayViewFromImage(labels), sitk.GetArrayViewFromImage(carried)
    for value in (1, 2, 3, 4, 5):  # the cord (3) and esophagus (5) are a few voxels across
        expected = np.count_nonzero(source == value) * ratio
        assert np.count_nonzero(result == value) == pytest.approx(expected, rel=0.01), value


# --- what users are told about a label map file and its place (issue 22: generated mutants) -----


def _box(size, origin=(0.0, 0.0, 0.0), spacing=(1.0, 1.0, 1.0), value=1, where=None) -> sitk.Image:
    array = np.zeros(size[::-1], dtype=np.uint8)
    if where is not None:
        array[where] = value
    image = sitk.GetImageFromArray(array)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    return image


def test_a_label_map_file_is_read_or_refused_naming_the_file_and_the_reason(tmp_path):
    labels = _box((4, 5, 6), where=(slice(1, 3), slice(1, 3), slice(1, 3)))
    good = tmp_path / "seg.nrrd"
    sitk.WriteImage(labels, str(good))
    read = read_label_map(good)  # a Path is fine too
    assert read.GetSize() == (4, 5, 6) and sitk.GetArrayFromImage(read).sum() == 8
    volume4d = sitk.JoinSeries([labels])  # a 3D map saved with a 4th axis of one
    four_d = tmp_path / "seg4d.nrrd"  # NRRD keeps the 4th axis (NIfTI drops it on reading)
    sitk.WriteImage(volume4d, str(four_d))
    assert read_label_map(str(four_d)).GetSize() == (4, 5, 6)
    floats = tmp_path / "float.nrrd"
    sitk.WriteImage(sitk.Cast(labels, sitk.sitkFloat32), str(floats))
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.nii.gz"
    garbage.write_bytes(b"not an image at all" * 20)
    cases = [
        (tmp_path / "gone.nii.gz", ": no such file"),
        (tmp_path, ": is a folder; a label map is one image file"),
        (empty, ": file is empty"),
        (garbage, ": not a readable image ("),
        (floats, ": has 32-bit float voxels; a label map needs an integer pixel type"),
    ]
    for path, message in cases:
        with pytest.raises(InputError) as raised:
            read_label_map(path)
        assert str(raised.value).startswith(f"{path}{message}"), str(raised.value)
    with pytest.raises(InputError) as raised:
        read_label_map(garbage)
    with pytest.raises(RuntimeError) as itk:
        sitk.ReadImage(str(garbage))
    last_line = [line.strip() for line in str(itk.value).splitlines() if line.strip()][-1]
    assert str(raised.value) == f"{garbage}: not a readable image ({last_line[:200]})"  # ITK's own words


def test_labels_elsewhere_than_their_scan_are_refused_with_both_extents():
    scan = _box((10, 10, 10), origin=(0.0, 0.0, 0.0), spacing=(2.0, 2.0, 3.0))
    far = _box((10, 8, 6), origin=(500.0, -20.0, 100.0), where=(slice(0, 2), slice(0, 2), slice(0, 2)))
    with pytest.raises(LabelError) as raised:
        check_labels_overlap(far, scan)
    assert str(raised.value) == (
        "none of the labelled voxels lie inside the scan (labels span x 500..510, y -20..-12, z 100..106 mm, "
        "the scan spans x -1..19, y -1..19, z -2..28 mm): the label map is not in the scan's physical space"
    )
    # a row of 10 labelled voxels along x: the first on the scan, the second's centre on its edge (x 19)
    row = _box((40, 1, 1), origin=(18.0, 0.0, 0.0), where=(0, 0, slice(0, 10)))
    with pytest.raises(
        LabelError, match=r"^only 20% of the labelled voxels lie inside the scan \(labels span"
    ):
        check_labels_overlap(row, scan)
    # 7 voxels of which 4 lie on the scan (x 12..18 then 20 onwards off it): every voxel counts
    seven = _box((7, 1, 1), origin=(12.0, 0.0, 0.0), spacing=(2.0, 1.0, 1.0), where=(0, 0, slice(0, 7)))
    assert check_labels_overlap(seven, scan) == pytest.approx(4 / 7)
    half = _box((2, 1, 1), origin=(18.0, 0.0, 0.0), spacing=(4.0, 1.0, 1.0), where=(0, 0, slice(0, 2)))
    assert check_labels_overlap(half, scan) == 0.5  # "less than half" is refused, half is not
    assert check_labels_overlap(_box((5, 5, 5)), scan) == 1.0  # nothing labelled: nothing out of place


def test_one_small_structure_on_a_large_label_map_is_still_placed():
    """A large map is looked at every n-th voxel; a structure between those samples is found anyway."""
    scan = _box((10, 10, 10))
    large = _box((200, 200, 200), origin=(400.0, 0.0, 0.0), where=(101, 101, 101))
    with pytest.raises(LabelError, match="^none of the labelled voxels"):
        check_labels_overlap(large, scan)
    on_scan = _box((200, 200, 200), origin=(-100.0, -100.0, -100.0), where=(105, 105, 105))
    assert check_labels_overlap(on_scan, scan) == 1.0
    # a large structure: sampled voxels, and a share of them, are placed where they are
    block = (slice(100, 160), slice(100, 160), slice(100, 160))
    on_large = _box((200, 200, 200), origin=(-100.0, -100.0, -100.0), where=block)
    assert check_labels_overlap(on_large, _box((100, 100, 100))) == 1.0


def test_dice_compares_the_values_both_maps_hold_and_names_a_wrong_argument():
    first = _box((6, 1, 1), where=(0, 0, slice(0, 4)))  # value 1 on x 0..3
    second_array = np.array([[[1, 1, 0, 0, 2, 2]]], dtype=np.uint8)
    second = sitk.GetImageFromArray(second_array)
    assert label_dice(first, second) == {1: pytest.approx(2 * 2 / (4 + 2))}  # 2 only in the second
    dice = label_dice(first, second, values=[1, 2, 3])
    assert dice[2] == 0.0 and np.isnan(dice[3])  # 3 in neither: no Dice to give
    with pytest.raises(TypeError, match="^first must be a SimpleITK.Image"):
        label_dice(np.zeros((2, 2, 2)), second)
    with pytest.raises(TypeError, match="^second must be a SimpleITK.Image"):
        label_dice(first, None)


def test_carrying_names_the_argument_that_is_not_an_image():
    labels = _box((4, 4, 4), where=(slice(1, 3), slice(1, 3), slice(1, 3)))
    identity = sitk.Transform(3, sitk.sitkIdentity)
    with pytest.raises(TypeError, match="^scan must be a SimpleITK.Image"):
        carry_labels(labels, None, labels, identity)
    with pytest.raises(TypeError, match="^fixed must be a SimpleITK.Image"):
        carry_labels(labels, labels, "fixed.nii.gz", identity)
    with pytest.raises(TypeError, match="^labels must be a SimpleITK.Image"):
        check_label_image(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="^labels must be a SimpleITK.Image"):
        check_labels_overlap(np.zeros((2, 2, 2)), labels)
    with pytest.raises(TypeError, match="^scan must be a SimpleITK.Image"):
        check_labels_overlap(labels, None)
    nearest = carry_labels(labels, labels, labels, identity, method="nearest")
    assert np.array_equal(sitk.GetArrayFromImage(nearest), sitk.GetArrayFromImage(labels))


def test_carrying_by_nearest_neighbour_gives_what_resampling_by_nearest_gives():
    array = np.zeros((8, 8, 8), np.uint8)
    array[2:6, 3, 2:6] = 1  # a one-voxel-thin sheet: linear and nearest disagree on it
    array[4, 5, 4] = 2
    labels = sitk.GetImageFromArray(array)
    transform = sitk.AffineTransform(3)
    transform.SetTranslation((0.4, 0.3, 0.45))
    transform.SetMatrix((1.1, 0, 0, 0, 0.9, 0, 0, 0, 1.05))
    carried = {method: carry_labels(labels, labels, labels, transform, method) for method in METHODS}
    nearest = resample_labels(labels, labels, transform, method="nearest")
    assert np.array_equal(sitk.GetArrayFromImage(carried["nearest"]), sitk.GetArrayFromImage(nearest))
    assert not np.array_equal(sitk.GetArrayFromImage(carried["linear"]), sitk.GetArrayFromImage(nearest))


def test_a_large_label_map_is_judged_on_every_nth_voxel_along_each_axis(monkeypatch):
    """Label maps larger than the sample (2 million voxels; 1000 here, to stay small) are judged on
    every n-th voxel along each axis, n the cube root of size over sample (4 for 40³): a row of 40
    labelled voxels of which the first 10 lie on the scan reports the share of its samples (3 of 10),
    neither the exact share (25 %) nor a coarser sample's."""
    from CTAffineRegisterLib.resample import labels as labels_module

    monkeypatch.setattr(labels_module, "_OVERLAP_SAMPLE", 1000)
    scan = _box((10, 10, 10))
    row = _box((40, 40, 40), where=(0, 0, slice(0, 40)))
    with pytest.raises(LabelError, match=r"^only 30% of the labelled voxels lie inside the scan"):
        check_labels_overlap(row, scan)
    # a structure between the sampled voxels is not overlooked: every voxel is then looked at
    small = _box((40, 40, 40), where=(1, 1, slice(1, 4)))
    assert check_labels_overlap(small, scan) == 1.0


@pytest.mark.parametrize("edge", ["low", "high"])
def test_a_labelled_voxel_right_at_the_scans_edge_counts_as_inside(edge):
    """The scan's voxel edges bound it (half a voxel beyond the outer centres, and 1/1000 voxel for
    rounding): a labelled voxel centred exactly there is on the scan, on either side."""
    scan = _box((10, 10, 10))
    at_edge = -(0.5 + 1e-3) if edge == "low" else 9 + (0.5 + 1e-3)
    # two labelled voxels along x: one centred on the edge, one 4 mm further in
    labels = _box((2, 1, 1), origin=(at_edge, 0.0, 0.0), spacing=(4.0, 1.0, 1.0), where=(0, 0, slice(0, 2)))
    if edge == "high":
        labels.SetDirection((-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, -1.0))  # x runs towards the scan
    assert check_labels_overlap(labels, scan) == 1.0


def test_nearest_neighbour_puts_the_labels_on_the_scans_grid_with_background_beyond_them():
    """The scan's own values never leak into the result, and its voxels beyond the label map are 0."""
    array = np.zeros((6, 6, 6), np.uint8)
    array[1:5, 1:5, 1:5] = 3
    labels = sitk.GetImageFromArray(array)
    scan = sitk.GetImageFromArray(np.full((6, 6, 10), -1000, np.int16))
    scan.SetOrigin((-2.0, 0.0, 0.0))  # two columns of voxels before the label map, two after it
    carried = resample_labels(labels, scan, sitk.Transform(3, sitk.sitkIdentity), method="nearest")
    expected = np.zeros((6, 6, 10), np.uint8)
    expected[:, :, 2:8] = array
    assert carried.GetPixelID() == sitk.sitkUInt8
    assert np.array_equal(sitk.GetArrayFromImage(carried), expected)


def test_a_centred_rotation_and_a_vanishing_scale_carry_labels_where_they_map_them():
    """A rotation about the grid's centre (a centred transform) leaves a centred block in place; a
    transform shrinking space 100 000 times (allowed: not singular) maps every scan voxel into it."""
    array = np.zeros((8, 8, 8), np.uint8)
    array[2:6, 2:6, 2:6] = 4
    labels = sitk.GetImageFromArray(array)
    turn = sitk.Euler3DTransform((3.5, 3.5, 3.5), 0.0, 0.0, np.pi / 2)
    assert np.array_equal(sitk.GetArrayFromImage(resample_labels(labels, labels, turn)), array)
    scan = sitk.Image([5, 6, 7], sitk.sitkInt16)
    shrink = sitk.AffineTransform(3)
    shrink.SetMatrix((1e-5, 0, 0, 0, 1e-5, 0, 0, 0, 1e-5))
    shrink.SetTranslation((3.5, 3.5, 3.5))
    carried = sitk.GetArrayFromImage(resample_labels(labels, scan, shrink))
    assert carried.shape == (7, 6, 5) and np.all(carried == 4)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_the_box_of_a_scaling_transform_holds_all_the_whole_grid_gives(monkeypatch, axis):
    """A transform scaling by 1/4 about a point off the origin: each structure's box on the fixed grid
    still holds every voxel it reaches (the boxes only save work)."""
    import CTAffineRegisterLib.resample.labels as labels_module

    array = np.zeros((10, 10, 10), np.uint8)
    array[3:7, 3:7, 3:7] = 2
    labels = sitk.GetImageFromArray(array)
    fixed = sitk.Image([40, 40, 40], sitk.sitkInt16)
    centre = [0.0, 0.0, 0.0]
    centre[axis] = 1.0
    shrink = sitk.ScaleTransform(3, (0.25, 0.25, 0.25))
    shrink.SetCenter(centre)
    boxed = sitk.GetArrayFromImage(resample_labels(labels, fixed, shrink))
    whole = tuple(slice(0, size) for size in fixed.GetSize()[::-1])
    monkeypatch.setattr(labels_module, "_fixed_region", lambda *arguments: whole)
    everywhere = sitk.GetArrayFromImage(resample_labels(labels, fixed, shrink))
    assert np.count_nonzero(everywhere == 2) > 1000
    assert np.array_equal(boxed, everywhere)


def test_a_structure_just_beyond_the_scans_edge_is_left_out():
    """Its box on the fixed grid starts right at the grid's end (empty): nothing of it is carried."""
    array = np.zeros((12, 12, 14), np.uint8)
    array[2:5, 2:5, 2:5] = 1
    array[2:5, 2:5, 11:13] = 2  # from x = 11: within one voxel of the scan's last (x = 9) by linear reach
    scan = sitk.Image([10, 12, 12], sitk.sitkInt16)
    carried = sitk.GetArrayFromImage(
        resample_labels(sitk.GetImageFromArray(array), scan, sitk.Transform(3, sitk.sitkIdentity))
    )
    assert np.array_equal(carried, array[:, :, :10])


def test_a_voxel_shared_equally_by_two_structures_goes_to_the_first():
    """Half a voxel off the label map's grid, the voxel between two touching structures gets half of
    each: the structure met first (the lower value) keeps it, the same on every run."""
    array = np.zeros((4, 4, 12), np.uint8)
    array[:, :, 2:6] = 1
    array[:, :, 6:10] = 2
    scan = sitk.Image([11, 4, 4], sitk.sitkInt16)
    scan.SetOrigin((0.5, 0.0, 0.0))
    carried = resample_labels(sitk.GetImageFromArray(array), scan, sitk.Transform(3, sitk.sitkIdentity))
    assert sitk.GetArrayFromImage(carried)[1, 1].tolist() == [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 0]


def test_label_values_beyond_double_precision_are_kept_exactly():
    array = np.zeros((2, 2, 2), np.uint64)
    array[0, 0, 0], array[1, 1, 1] = 2**60 + 1, 2**60 + 3  # 64-bit values a float64 would round
    labels = sitk.GetImageFromArray(array)
    carried = resample_labels(labels, labels, sitk.Transform(3, sitk.sitkIdentity))
    assert sitk.GetArrayFromImage(carried).tolist() == array.tolist()


def test_a_structure_on_the_label_maps_first_voxels_is_carried_whole():
    array = np.zeros((6, 6, 6), np.uint8)
    array[0:3, 0:3, 0:3] = 5  # touching the map's first voxel along every axis
    labels = sitk.GetImageFromArray(array)
    carried = resample_labels(labels, labels, sitk.Transform(3, sitk.sitkIdentity))
    assert np.array_equal(sitk.GetArrayFromImage(carried), array)


def test_a_structure_of_just_over_half_a_fixed_voxel_is_kept():
    """Its shares sum to a volume of 0.50000003 voxels: rounded to 1 voxel (summed in double precision;
    in single precision the sum would be 0.5, rounded to 0, and the structure lost)."""
    from CTAffineRegisterLib.resample.labels import _volume_keeping_level

    assert _volume_keeping_level(np.array([0.5, 2.0**-25, 0.0], np.float32)) == 0.5
    assert _volume_keeping_level(np.array([0.25, 0.25, 0.0], np.float32)) is None  # half a voxel


def _values_image(shape, values, every=1) -> sitk.Image:
    array = np.zeros(int(np.prod(shape)), np.int16)
    array[1::every][: len(values)] = values
    return sitk.GetImageFromArray(array.reshape(shape))


def test_a_label_map_may_hold_1000_values_and_no_more():
    """1000 distinct values (background included) is a label map; 1001 is a scan, found from a sample
    of the voxels (every voxel of a small map); values the sample of a large map misses (every second
    voxel of 2 million) are counted over the whole map."""
    assert len(check_label_image(_values_image((10, 10, 10), np.arange(1, MAX_LABEL_COUNT)))) == 999
    with pytest.raises(LabelError, match=f"^holds more than {MAX_LABEL_COUNT} distinct values: a scan"):
        check_label_image(_values_image((7, 11, 13), np.arange(1, MAX_LABEL_COUNT + 1)))
    hidden = _values_image((20, 100, 1000), np.arange(1, MAX_LABEL_COUNT + 2), every=2)  # odd voxels only
    with pytest.raises(LabelError, match=f"^holds 1002 distinct values \\(at most {MAX_LABEL_COUNT} in a"):
        check_label_image(hidden)
