"""Registration engine: exact answers from synthetic and real-anatomy pairs with every padding kind."""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np
import pytest
import SimpleITK as sitk
from conftest import shared_sample
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.core.affine import mapping_key
from CTAffineRegisterLib.core.pyramid import as_mask, resample_mask
from CTAffineRegisterLib.io.images import read_image
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.quality.accuracy import ring_voxels, target_registration_error
from CTAffineRegisterLib.registration.engine import (
    ProgressEvent,
    RegistrationCancelled,
    RegistrationError,
    RegistrationOptions,
    _Outcome,
    _Runner,
    _Step,
    register_images,
)
from CTAffineRegisterLib.registration.preparation import _metric_region, prepare_pyramids
from CTAffineRegisterLib.resample.scans import resample_to_fixed

PADDING_CASES = {  # name: (moving padding, fixed padding)
    "moving-3024": (-3024, None),
    "fixed-2048": (None, -2048),
    "both-1500": (-1500, -1500),
    "moving-0": (0, None),
    "both-0": (0, 0),
}


@dataclasses.dataclass
class Case:
    pair: synthetic.SyntheticPair
    fixed_analysis: object
    moving_analysis: object


def _case(pair: synthetic.SyntheticPair) -> Case:
    return Case(pair, analyze_background(pair.fixed), analyze_background(pair.moving))


def _check_registration(case: Case, options=None, max_tre_mm: float = 1.0):
    result = register_images(
        case.pair.fixed, case.pair.moving, case.fixed_analysis, case.moving_analysis, options
    )
    mean_tre, max_tre = target_registration_error(
        result.transform, case.pair.true_transform, case.pair.body_points
    )
    assert mean_tre < max_tre_mm, f"mean TRE {mean_tre:.3f} mm (max {max_tre:.3f}); {result.to_dict()}"
    output = resample_to_fixed(case.pair.moving, case.pair.fixed, result.transform, case.moving_analysis)
    assert ring_voxels(output, case.pair.fixed_valid_mask) == 0
    assert output.GetPixelID() == case.pair.moving.GetPixelID()
    assert result.quality["verdict"] == "ok", result.quality
    return result


@pytest.fixture(scope="module")
def small_case() -> Case:
    return _case(synthetic.make_pair(0, **SMALL_PATIENT))


@pytest.mark.parametrize("name", list(PADDING_CASES))
def test_synthetic_pair_with_padding_registers_accurately_without_ring(name):
    moving_padding, fixed_padding = PADDING_CASES[name]
    seed = list(PADDING_CASES).index(name) + 1
    case = _case(
        synthetic.make_pair(seed, moving_padding=moving_padding, fixed_padding=fixed_padding, **SMALL_PATIENT)
    )
    result = _check_registration(case)
    assert isinstance(result.transform, sitk.AffineTransform)
    assert [stage.stage for stage in result.stages][:1] == ["rigid"]
    assert result.stages[-1].stage == "affine"


@pytest.fixture(scope="module")
def torso() -> sitk.Image:
    return sitk.ReadImage(str(shared_sample("totalsegmentator/example_ct.nii.gz")))


@pytest.mark.parametrize(
    "moving_padding, fixed_padding", [(-3024, None), (None, -2048), (-1500, -1500), (0, None)]
)
def test_real_torso_moved_by_known_affine_registers_accurately(torso, moving_padding, fixed_padding):
    pair = synthetic.make_pair_from_image(
        torso,
        seed=abs(moving_padding or 7) + abs(fixed_padding or 3),
        moving_padding=moving_padding,
        fixed_padding=fixed_padding,
    )
    _check_registration(_case(pair))


def test_real_ge_three_slice_slab_is_refused_but_resamples_without_rings():
    """Three 1 mm slices cannot be placed along the body axis: refused with the reason, before any
    work. Resampled with the known in-plane motion, the real -3024 padding still leaves no ring."""
    loaded = read_image(str(shared_sample("dcmqi/ct-3slice")))
    fixed = loaded.image
    fixed_analysis = analyze_background(fixed, loaded.dicom_padding)
    center = fixed.TransformContinuousIndexToPhysicalPoint([255.5, 255.5, 1.0])
    truth = sitk.Euler3DTransform(center, 0.0, 0.0, 0.06, (5.0, -3.0, 0.0))
    moving = resample_to_fixed(fixed, fixed, truth.GetInverse(), fixed_analysis)
    moving = synthetic.insert_fov_padding(
        moving, -3024, fixed_analysis.fov.radius_mm, fixed_analysis.fov.center_mm
    )
    moving_analysis = analyze_background(moving, loaded.dicom_padding)
    with pytest.raises(RegistrationError, match=r"fixed image is a slab 3 mm thick \(3 slices\)"):
        register_images(
            fixed, moving, fixed_analysis, moving_analysis, RegistrationOptions(transform="rigid")
        )
    output = resample_to_fixed(moving, fixed, truth, moving_analysis)
    assert ring_voxels(output, fixed_analysis.valid_mask) == 0


def test_rigid_registration_returns_a_rigid_transform():
    truth = sitk.Euler3DTransform((0, 0, 0), 0.06, -0.05, 0.12, (8.0, -6.0, 5.0))
    case = _case(synthetic.make_pair(21, true_transform=truth, **SMALL_PATIENT))
    result = _check_registration(case, RegistrationOptions(transform="rigid"))
    assert isinstance(result.transform, sitk.Euler3DTransform)
    assert {stage.stage for stage in result.stages} == {"rigid"}


def test_similarity_registration_recovers_an_isotropic_scale():
    truth = sitk.Similarity3DTransform()
    truth.SetScale(1.06)
    truth.SetRotation((0, 0, 1), 0.1)
    truth.SetTranslation((-5.0, 4.0, 7.0))
    case = _case(synthetic.make_pair(22, true_transform=truth, **SMALL_PATIENT))
    result = _check_registration(case, RegistrationOptions(transform="similarity"))
    assert isinstance(result.transform, sitk.Similarity3DTransform)
    assert result.transform.GetScale() == pytest.approx(1.06, abs=0.01)


def test_grids_with_other_directions_register_in_physical_space():
    flipped = (-1, 0, 0, 0, -1, 0, 0, 0, 1)  # a RAS-ordered moving scan next to an LPS-ordered fixed one
    _check_registration(_case(synthetic.make_pair(23, moving_direction=flipped, **SMALL_PATIENT)))


def test_large_shift_along_the_body_axis_is_found_by_the_initial_search():
    truth = sitk.Euler3DTransform((0, 0, 0), 0.0, 0.05, 0.05, (8.0, -6.0, 65.0))
    case = _case(synthetic.make_pair(24, true_transform=truth, **SMALL_PATIENT))
    result = _check_registration(case)
    assert result.initialization.startswith("z-scan")


def test_user_initial_transform_is_used(small_case):
    start = sitk.AffineTransform(small_case.pair.true_transform)
    start.SetTranslation(np.add(start.GetTranslation(), (3.0, -2.0, 2.0)).tolist())
    result = _check_registration(small_case, RegistrationOptions(initial_transform=start))
    assert result.initialization == "user"


@pytest.fixture(scope="module")
def small_result(small_case):
    """The default (affine) registration of the small pair, with every progress event it sent."""
    events: list[ProgressEvent] = []
    result = register_images(
        small_case.pair.fixed,
        small_case.pair.moving,
        small_case.fixed_analysis,
        small_case.moving_analysis,
        progress=events.append,
    )
    return result, events


def test_progress_events_arrive_with_increasing_iterations(small_result):
    result, events = small_result
    assert len(events) == result.iterations > 10
    assert [event.iteration for event in events] == list(range(1, len(events) + 1))
    assert {event.stage for event in events} == {"rigid", "similarity", "affine"}
    assert all(np.isfinite(event.metric) and event.metric < 0 for event in events)
    fractions = [event.fraction for event in events]  # a progress bar that only moves forward, to the end
    assert fractions == sorted(fractions) and fractions[0] < 0.05 and 0.8 <= fractions[-1] <= 1.0
    assert [event.level for event in events] == sorted(event.level for event in events)


def test_cancel_callable_stops_the_run(small_case):
    seen: list[ProgressEvent] = []
    with pytest.raises(RegistrationCancelled):
        register_images(
            small_case.pair.fixed,
            small_case.pair.moving,
            small_case.fixed_analysis,
            small_case.moving_analysis,
            progress=seen.append,
            cancel=lambda: len(seen) >= 5,
        )
    assert len(seen) == 5  # stopped at once, not at the end of the stage


def test_cancel_event_stops_the_run(small_case):
    stop = threading.Event()
    stop.set()
    with pytest.raises(RegistrationCancelled):
        register_images(
            small_case.pair.fixed,
            small_case.pair.moving,
            small_case.fixed_analysis,
            small_case.moving_analysis,
            cancel=stop,
        )


def test_cancel_during_the_parallel_polish_stops_both_threads(small_case):
    seen: list[ProgressEvent] = []
    threads_before = threading.active_count()
    with pytest.raises(RegistrationCancelled):
        register_images(
            small_case.pair.fixed,
            small_case.pair.moving,
            small_case.fixed_analysis,
            small_case.moving_analysis,
            progress=seen.append,
            cancel=lambda: any(event.level == 2 for event in seen),
        )
    assert seen[-1].level == 2 and sum(event.level == 2 for event in seen) == 1
    assert threading.active_count() == threads_before  # the helper thread has ended too


@pytest.mark.parametrize(
    "transform, expected",
    [
        ("rigid", [("rigid", 0), ("rigid", 1), ("rigid", 2)]),
        ("similarity", [("rigid", 0), ("similarity", 0), ("similarity", 1), ("similarity", 2)]),
        ("affine", [("rigid", 0), ("similarity", 0), ("affine", 0), ("affine", 1), ("affine", 2)]),
    ],
)
def test_degrees_of_freedom_come_in_on_the_coarsest_level(small_case, small_result, transform, expected):
    if transform == "affine":  # the default
        result = small_result[0]
    else:
        result = register_images(
            small_case.pair.fixed,
            small_case.pair.moving,
            small_case.fixed_analysis,
            small_case.moving_analysis,
            RegistrationOptions(transform=transform),
        )
    roles = [stage.role for stage in result.stages]
    planned = result.stages[: roles.index("optimum")] if "optimum" in roles else result.stages
    assert [(stage.stage, stage.level) for stage in planned if not stage.reverted] == expected
    assert "round(s) of two polishes" in planned[-1].stop_reason
    assert all(stage.stage == transform for stage in result.stages[len(planned) :])  # the last stage too
    assert result.polish_spread_mm is not None and 0.0 <= result.polish_spread_mm < 2.0


def test_two_polishes_are_averaged_and_their_spread_measured():
    from CTAffineRegisterLib.core.affine import mean_distance as _mean_distance
    from CTAffineRegisterLib.registration.engine import _average

    first = sitk.AffineTransform(3)
    first.SetCenter((5.0, 0.0, 0.0))
    first.SetMatrix((1.02, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.98))
    second = sitk.AffineTransform(first)
    second.SetTranslation((0.3, -0.4, 0.0))  # 0.5 mm apart everywhere
    points = np.random.default_rng(0).uniform(-100, 100, size=(50, 3))
    assert _mean_distance(first, second, points) == pytest.approx(0.5)
    mean = _average([first, second], "affine")
    assert np.allclose(
        mean.TransformPoint((10.0, 20.0, 30.0)),
        np.add(first.TransformPoint((10.0, 20.0, 30.0)), (0.15, -0.2, 0.0)),
    )
    rigid = _average(
        [sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, 0.1), sitk.Euler3DTransform((0, 0, 0), 0.0, 0.0, 0.2)],
        "rigid",
    )
    assert isinstance(rigid.Downcast(), sitk.Euler3DTransform)
    assert rigid.Downcast().GetAngleZ() == pytest.approx(0.15, abs=1e-3)


def test_result_to_dict_is_json_and_transform_writes_as_a_simple_tfm(small_case, tmp_path):
    result = register_images(
        small_case.pair.fixed,
        small_case.pair.moving,
        small_case.fixed_analysis,
        small_case.moving_analysis,
        RegistrationOptions(level_count=2),
    )
    text = json.dumps(result.to_dict())
    data = json.loads(text)
    assert data["transform_type"] == "AffineTransform"
    assert data["quality"]["verdict"] == "ok" and data["quality"]["figures"]["correlation"] > 0.9
    assert len(data["stages"]) == len(result.stages) and data["seconds"] > 0
    assert data["options"]["level_count"] == 2 and data["options"]["number_of_threads"] == 1
    assert data["polish_spread_mm"] == round(result.polish_spread_mm, 3)
    path = tmp_path / "result.tfm"
    sitk.WriteTransform(result.transform, str(path))
    assert "AffineTransform_double_3_3" in path.read_text()
    back = sitk.ReadTransform(str(path))
    assert np.allclose(
        back.TransformPoint((10.0, 20.0, 30.0)), result.transform.TransformPoint((10.0, 20.0, 30.0))
    )


def test_2d_image_is_refused_with_a_clear_message(small_case):
    flat = sitk.Image(32, 32, sitk.sitkInt16)
    with pytest.raises(ValueError, match="fixed must be a 3D image, not 2D"):  # api_checks, before any work
        register_images(flat, small_case.pair.moving, small_case.fixed_analysis, small_case.moving_analysis)


def test_constant_image_is_refused_with_a_clear_message(small_case):
    constant = sitk.Image(small_case.pair.moving.GetSize(), sitk.sitkInt16) + 40
    constant.CopyInformation(small_case.pair.moving)
    analysis = analyze_background(constant)
    with pytest.raises(RegistrationError, match="constant"):
        register_images(small_case.pair.fixed, constant, small_case.fixed_analysis, analysis)


def test_no_overlap_is_refused_with_a_clear_message(small_case):
    """Refused after the initialisation, before any optimiser iteration, saying how little overlaps."""
    far_away = sitk.TranslationTransform(3, (5000.0, 0.0, 0.0))
    events: list[ProgressEvent] = []
    with pytest.raises(RegistrationError, match=r"no overlap: after initialisation only 0\.0% of the fixed"):
        register_images(
            small_case.pair.fixed,
            small_case.pair.moving,
            small_case.fixed_analysis,
            small_case.moving_analysis,
            RegistrationOptions(initial_transform=far_away),
            progress=events.append,
        )
    assert events == []


def test_too_few_valid_voxels_is_refused_with_a_clear_message(small_case):
    tiny = sitk.Image(small_case.pair.fixed.GetSize(), sitk.sitkUInt8)
    tiny.CopyInformation(small_case.pair.fixed)
    tiny[40:44, 40:44, 30:33] = 1
    analysis = dataclasses.replace(small_case.fixed_analysis, valid_mask=tiny, body_mask=tiny)
    with pytest.raises(RegistrationError, match="too few valid"):
        register_images(small_case.pair.fixed, small_case.pair.moving, analysis, small_case.moving_analysis)


def test_analysis_of_another_image_is_refused_with_a_clear_message(small_case):
    with pytest.raises(RegistrationError, match="another image"):
        register_images(
            small_case.pair.fixed,
            small_case.pair.moving,
            small_case.moving_analysis,
            small_case.moving_analysis,
        )


def test_unknown_transform_type_is_refused():
    with pytest.raises(ValueError, match="transform"):
        RegistrationOptions(transform="bspline")


@pytest.mark.parametrize(
    "seed, field_of_view",
    [
        (3, {"moving_fov_radius_mm": 75.0}),  # moving FOV cuts the body
        (
            1,
            {"fixed_fov_radius_mm": 75.0, "fixed_padding": -3024, "moving_padding": None},
        ),  # fixed FOV cuts it
        (
            4,
            {"fixed_fov_radius_mm": 80.0, "fixed_padding": -2048, "moving_fov_radius_mm": 75.0},
        ),  # both FOVs cut it, each scan with its own padding
    ],
)
def test_a_field_of_view_that_cuts_through_the_body_registers_accurately(seed, field_of_view):
    """The metric must sample real data only on both sides: air written over the cut-off body (the
    padding replaced) would otherwise pull the result (1.1-5 mm off when the moving side is not masked)."""
    case = _case(synthetic.make_pair(seed, **SMALL_PATIENT, **field_of_view))
    _check_registration(case, max_tre_mm=0.7)


def test_a_moving_scan_covering_half_the_fixed_one_along_the_body_axis_registers_accurately():
    pair = synthetic.make_pair(
        8,
        **{**SMALL_PATIENT, "max_translation_mm": 10.0},
        moving_size=(86, 86, 28),
        moving_offset_mm=(0.0, 0.0, 70.0),
    )
    moving_extent = pair.moving.GetSize()[2] * pair.moving.GetSpacing()[2]
    fixed_extent = pair.fixed.GetSize()[2] * pair.fixed.GetSpacing()[2]
    assert moving_extent < 0.55 * fixed_extent
    inside = _points_inside(pair.moving, pair.true_transform, pair.body_points)
    pair = dataclasses.replace(pair, body_points=pair.body_points[inside])  # where the answer is defined
    _check_registration(_case(pair))


def _points_inside(image: sitk.Image, transform: sitk.Transform, points: np.ndarray) -> np.ndarray:
    size = np.array(image.GetSize())
    flags = []
    for point in points:
        index = np.array(
            image.TransformPhysicalPointToContinuousIndex(transform.TransformPoint(tuple(point)))
        )
        flags.append(bool(np.all(index >= 2) and np.all(index <= size - 3)))
    return np.array(flags)


def test_the_metric_region_lies_inside_the_fixed_scans_real_data():
    pair = synthetic.make_pair(
        1, **SMALL_PATIENT, fixed_fov_radius_mm=75.0, fixed_padding=-3024, moving_padding=None
    )
    analysis = analyze_background(pair.fixed)
    valid = as_mask(analysis.valid_mask)
    region = _metric_region(analysis, valid, RegistrationOptions())
    grid_valid = sitk.GetArrayViewFromImage(resample_mask(valid, region, sitk.Transform())) > 0
    region_array = sitk.GetArrayViewFromImage(region) > 0
    assert region_array.any() and not (region_array & ~grid_valid).any()
    body = sitk.GetArrayViewFromImage(resample_mask(analysis.body_mask, region, sitk.Transform())) > 0
    assert (body & ~grid_valid).any()  # the body goes on outside the FOV: the limit is needed here


def _default_runner(case) -> _Runner:
    """A registration runner with default options on the case's pyramids (for driving single stages)."""
    fixed_levels, moving_levels, _ = prepare_pyramids(
        case.pair.fixed, case.pair.moving, case.fixed_analysis, case.moving_analysis, RegistrationOptions()
    )
    return _Runner(fixed_levels, moving_levels, RegistrationOptions(), None, None, 1)


def test_a_stage_that_makes_the_coarse_metric_worse_is_undone(small_case):
    """A runaway stage (here: one that jumps 40 mm) is reverted, and the run goes on from before it."""
    runner = _default_runner(small_case)
    start = sitk.AffineTransform(small_case.pair.true_transform)

    def runaway(transform, step, step_scale, points, seed, *rest):
        jumped = sitk.AffineTransform(transform)
        jumped.SetTranslation(np.add(jumped.GetTranslation(), (40.0, 0.0, 0.0)).tolist())
        return _Outcome(jumped, -0.1, "ran away")

    runner._optimize = runaway
    result = runner.run(start, _Step("affine", 0, "refine"))
    assert runner.stages[-1].reverted and "reverted" in runner.stages[-1].stop_reason
    assert mapping_key(result) == mapping_key(start)


def test_the_polish_keeps_the_mean_of_its_two_runs_and_measures_their_spread(small_case):
    """Two polishes from the same start, on independent sample sets, that end 0.6 mm apart on either
    side of it: each round starts from their mean, and the answer is that mean, not either run."""
    runner = _default_runner(small_case)
    start = sitk.AffineTransform(small_case.pair.true_transform)
    seeds = []

    def one_polish(transform, step, step_scale, points, seed, *rest):
        seeds.append(seed)
        moved = sitk.AffineTransform(transform)
        side = 1.0 if seed % 2 == 0 else -1.0  # the two runs of a round get seeds s and s + 1
        moved.SetTranslation(np.add(moved.GetTranslation(), (0.3 * side, 0.0, 0.0)).tolist())
        return _Outcome(moved, -0.5, "polished")

    runner._optimize = one_polish
    outcome = runner._polish(start, _Step("affine", 2, "polish"))
    assert mapping_key(outcome.transform) == mapping_key(start)
    assert runner.polish_spread_mm == pytest.approx(0.6)
    assert outcome.stop_reason.startswith("2 round(s) of two polishes")  # 0.6 mm apart: a second round
    assert len(seeds) == 4 and len(set(seeds)) == 4  # fresh samples in every run


def test_a_chest_cut_to_its_upper_part_registers_onto_another_patients_whole_chest():
    """Scans of two datasets differ in coverage and in z origin (here by 400 mm): the initial search
    along the body axis must reach past both. Judged by the expert lung contours of both patients."""
    folder = shared_sample("nsclc_radiomics")
    fixed = read_image(str(folder / "LUNG1-001_ct.nii.gz")).image
    fixed_labels = sitk.ReadImage(str(folder / "LUNG1-001_labels.nii.gz"))
    moving_full = read_image(str(folder / "LUNG1-003_ct.nii.gz")).image
    moving_labels = sitk.ReadImage(str(folder / "LUNG1-003_labels.nii.gz"))
    first = int(moving_full.GetSize()[2] * 0.4)
    moving, moving_labels = moving_full[:, :, first:], moving_labels[:, :, first:]
    result = register_images(fixed, moving, analyze_background(fixed), analyze_background(moving))
    mapped = sitk.Resample(moving_labels, fixed_labels, result.transform, sitk.sitkNearestNeighbor, 0)
    covered = sitk.Image(moving_labels.GetSize(), sitk.sitkUInt8) + 1
    covered.CopyInformation(moving_labels)
    covered = sitk.Resample(covered, fixed_labels, result.transform, sitk.sitkNearestNeighbor, 0)
    inside = sitk.GetArrayViewFromImage(covered) > 0  # the cut-off lung bases are compared nowhere
    for label in (1, 2):  # left and right lung
        a = (sitk.GetArrayViewFromImage(fixed_labels) == label) & inside
        b = (sitk.GetArrayViewFromImage(mapped) == label) & inside
        dice = 2.0 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
        assert dice > 0.7, f"lung {label}: Dice {dice:.2f}"
    assert result.quality["verdict"] == "ok", result.quality
