"""Mutation check: does the test suite notice realistic bugs? (a script, not collected by pytest)

Each mutant below is one small bug a person could plausibly write, in one file of the project: an
exact snippet of today's code, what replaces it, and what the bug would do to users. The script
copies the project to a temporary folder, puts one mutant in at a time, runs the test suite there
and says whether a test failed (the mutant is "killed") or not ("survived"). A surviving mutant is
a bug the suite would let through: write the test that catches it, or say why it cannot matter.

    python Testing/mutation_check.py                 # every mutant (a long run: up to the suite's
                                                     # time per mutant; killed ones stop early)
    python Testing/mutation_check.py --only NAME...  # some mutants
    python Testing/mutation_check.py --list          # the mutants, and whether each still applies

Keep the list current: when the code changes under a mutant, its snippet no longer occurs exactly
once and the script refuses to run, naming the mutant. Rewrite the snippet for today's code.

How a mutant is run: the copy's ``CTAffineRegister`` folder comes first on PYTHONPATH (checked: the
copy, not the installed package, is imported), bytecode caches are off, and
``python -m pytest -x -q -p no:cacheprovider`` runs the copy's ``Testing/`` test files: first the
files named by the mutant (where a failure is most likely; only to save time), then, if those pass,
all the others. The real CT samples are found as the suite finds them (``CTAR_SHARED_DATA`` or
``../shared/data`` beside this project); without them their tests skip and the mutants only they
catch survive. Standard library only.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join("CTAffineRegister", "CTAffineRegisterLib")
# Copied to the temporary folder: everything but version control, caches and virtual environments.
IGNORED = shutil.ignore_patterns(
    ".git", "__pycache__", "*.pyc", ".pytest_cache", ".ruff_cache", ".venv", "venv", "*.egg-info", "build",
    "dist", "demo-output", "out",
)  # fmt: skip
DEFAULT_TIMEOUT = 1200.0  # seconds per mutant; a mutant that hangs the suite counts as killed


@dataclass(frozen=True)
class Mutant:
    """One realistic bug: ``original`` (must occur exactly once in ``path``) becomes ``replacement``."""

    name: str
    path: str  # under CTAffineRegister/CTAffineRegisterLib/, or from the project root if it starts so
    original: str
    replacement: str
    effect: str  # what the bug does to users, in one line
    first: tuple[str, ...] = ()  # test files (paths under Testing/) run first: the likely killers
    issue: bool = False  # one of the 28 mutants of issue 15 (the 11 that survived then)

    def file(self, root: str) -> str:
        from_root = self.path.startswith(("CTAffineRegister/", "Testing/"))
        relative = self.path if from_root else os.path.join(LIB, self.path)
        return os.path.join(root, relative)


M = Mutant
MUTANTS = [
    # --- issue 15: the eleven bugs that survived the suite at commit 0578eca, on today's code -----
    M("issue-moving-mask-not-valid-only", "registration/preparation.py",
      "moving_ready, None, moving_factors, erode_mask_voxels=1, limit_mask=_padded_only(moving_valid)",
      "moving_ready, None, moving_factors, erode_mask_voxels=1, limit_mask=None",
      "the metric samples air written over a moving FOV cut: results 1-5 mm off, still called ok",
      ("registration/test_registration.py",), True),
    M("issue-default-fill-minus-1024", "pair/register.py",
      "fill_value = float(moving_analysis.air_value) if fill is None else fill",
      "fill_value = -1024.0 if fill is None else fill",
      "the output background is -1024 instead of the moving scan's own air level, silently",
      ("cli/test_cli.py", "mrml/test_mrml_bridge.py"), True),
    M("issue-written-mask-inverted", "pair/register.py",
      "registered=registered, valid_mask=valid,",
      "registered=registered, valid_mask=1 - valid,",
      "the written validity mask says fill where the data are real and the other way round",
      ("resample/test_fill.py", "cli/test_cli.py"), True),
    M("issue-body-dice-thresholds-swapped", "quality/verdict.py",
      "BODY_DICE_SUSPECT = 0.75\nBODY_DICE_FAILED = 0.6",
      "BODY_DICE_SUSPECT = 0.6\nBODY_DICE_FAILED = 0.75",
      "outlines that overlap a little less than expected are called failed, never suspect",
      ("quality/test_verdict.py",), True),
    M("issue-mirror-not-failed", "quality/verdict.py",
      "    if determinant < 0:\n",
      "    if determinant < -1.0:\n",
      "a transform that mirrors the scan passes the plausibility check",
      ("quality/test_verdict.py",), True),
    M("issue-stage-guard-off", "registration/engine.py",
      "reverted = before is not None and (after is None or after > before + GUARD_TOLERANCE * abs(before))",
      "reverted = False",
      "a stage that runs away into a worse placement is kept",
      ("registration/test_registration.py",), True),
    M("issue-padding-kept-for-registration", "resample/scans.py",
      "        prepared[valid == 0] = air\n",
      "        pass\n",
      "the registration input keeps the -3024 padding: its FOV edge drives the metric",
      ("resample/test_resampling.py", "registration/test_registration.py"), True),
    M("issue-ids-not-unique", "cohort/inputs.py",
      "while candidate.lower() in used or (number > 1 and candidate.lower() in own):",
      "while False:",
      "two inputs named scan.nii.gz write the same output files",
      ("cohort/test_cohort_inputs.py",), True),
    M("issue-existing-outputs-found-late", "cohort/resume.py",
      "        if existing:\n",
      "        if False:\n",
      "someone else's file at an output path is found only after the case registered",
      ("cohort/test_cohort_run.py", "cohort/test_cohort_safety.py", "cli/test_cli.py"), True),
    M("issue-fov-radius-a-voxel-small", "padding/analysis.py",
      'return FieldOfView("circle", float(radius), center_mm, axis, float(residual))',
      'return FieldOfView("circle", float(radius) - float(spacing[in_plane_axes].max()), center_mm, axis, '
      "float(residual))",
      "the reported field-of-view radius is a voxel too small",
      ("padding/test_background.py",), True),
    M("issue-fixed-region-not-valid-only", "registration/preparation.py",
      "region = grown & (sitk.GetArrayViewFromImage(region_valid) > 0)",
      "region = grown",
      "the fixed metric region takes in padding outside a fixed FOV that cuts the body",
      ("registration/test_registration.py",), True),
    # --- issue 19: the registration's last stage and the plausibility limits -----------------------
    M("refinement-keeps-a-worse-placement", "registration/optimum_refinement.py",
      "        if found.correlation > best_correlation:\n",
      "        if found.correlation > best_correlation - 1.0:\n",
      "the last stage hands out a placement that fits worse than the registration's own result",
      ("registration/test_optimum_refinement.py",)),
    M("refinement-never-triggered", "registration/optimum_refinement.py",
      "    return not_at_optimum(found) or gain_in_units > REFINE_MIN_GAIN\n",
      "    return not_at_optimum(found)\n",
      "a result the probes can improve (by less than the verdict's margin) is handed out as it is",
      ("registration/test_optimum_refinement.py",)),
    M("refinement-scales-a-rigid-result", "registration/optimum_refinement.py",
      'kinds = MOVE_KINDS if transform_type != "rigid" else ("shift", "rotation")',
      "kinds = MOVE_KINDS",
      "a rigid registration is refined by scaling, which it cannot keep",
      ("registration/test_optimum_refinement.py",)),
    M("plausibility-old-adult-limits", "quality/verdict.py",
      "SCALE_SUSPECT = (0.6, 1.7)",
      "SCALE_SUSPECT = (0.8, 1.25)",
      "a 1.3 scale between two adults' chests is called suspect: the verdict cries wolf",
      ("quality/test_verdict.py",)),
    M("anisotropy-not-checked", "quality/verdict.py",
      "    if anisotropy > ANISOTROPY_FAILED:\n",
      "    if anisotropy > 1e9:\n",
      "a transform that flattens the scan along one axis passes the plausibility check",
      ("quality/test_verdict.py",)),
    M("no-scaled-initial-placements", "registration/initialization.py",
      "    if ratio is not None and abs(ratio - 1.0) >= SIZE_RATIO_MIN:\n",
      "    if False:\n",
      "a patient much smaller than the reference starts from rigid placements only and can end wrong",
      ("registration/test_optimum_refinement.py",)),
    # --- issue 22: nine bugs of our own that survived the suite, each now pinned by a test ---------
    M("padding-range-not-connected", "padding/analysis.py",
      "    if high < LOWEST_REAL_HU:\n",
      "    if low < LOWEST_REAL_HU:\n",
      "a DICOM padding range reaching into air (-3024..-1000) makes air pockets inside the lungs padding",
      ("padding/test_background.py",)),
    M("labels-last-structure-wins", "resample/labels.py",
      "wins = (share >= level) & (share > best_share[local])",
      "wins = share >= level",
      "where two touching structures both qualify, the higher label number wins, not the larger share",
      ("resample/test_labels.py",)),
    M("apply-coverage-transposed", "pair/apply.py",
      "        mapped = points @ matrix.T + translation\n",
      "        mapped = points @ matrix + translation\n",
      "apply refuses a valid 90-degree turn about a far centre as mapping nowhere (0 % coverage)",
      ("pair/test_apply.py",)),
    M("elastix-compute-zyx-default-true", "io/transform_files.py",
      'compute_zyx = entries.get("ComputeZYX", ["false"])',
      'compute_zyx = entries.get("ComputeZYX", ["true"])',
      "an elastix Euler file without ComputeZYX turns in Z-Y-X order: points 100 mm out land mm off",
      ("pair/test_check.py",)),
    M("air-share-doubled", "quality/verdict.py",
      "    share = amount / max(1, 2 * body_samples)\n",
      "    share = amount / max(1, body_samples)\n",
      "2.5 % bowel gas that does not meet gas (must not be judged) fails the air check",
      ("quality/test_verdict.py",)),
    M("check-ignores-padding-tag", "pair/check.py",
      "        analyses[role] = analyze_background(scan.image, scan.dicom_padding)\n",
      "        analyses[role] = analyze_background(scan.image)\n",
      "check ignores the DICOM Pixel Padding tags: it refuses (or judges otherwise) a scan register takes",
      ("pair/test_check.py",)),
    M("cohort-labels-checked-on-fixed", "cohort/case.py",
      "    labels = _read_labels(task.labels_path, moving.image) if task.labels_path else None\n",
      "    labels = _read_labels(task.labels_path, fixed.loaded.image) if task.labels_path else None\n",
      "a cohort refuses the valid labels of a moving scan stored far from the fixed one in physical space",
      ("cohort/test_cohort_run.py",)),
    M("page-moving-path-not-escaped", "cohort/report_page.py",
      "f'<div class=\"path\">{_e(case.get(\"moving_path\"))}</div></td>'",
      "f'<div class=\"path\">{case.get(\"moving_path\")}</div></td>'",
      "markup in a moving file or folder name runs in the cohort's report.html",
      ("cohort/test_cohort_report.py",)),
    M("nii-header-counted-as-voxels", "io/file_integrity.py",
      "        present = os.path.getsize(path) - header.vox_offset\n",
      "        present = os.path.getsize(path)\n",
      "a .nii cut short by up to its header's size is read silently, the missing voxels as zeros",
      ("io/test_file_checks.py",)),
    # --- registration, pipeline, resampling ---------------------------------------------------------
    M("overlap-check-off", "registration/engine.py",
      "    if share < MIN_OVERLAP:\n        raise RegistrationError(\n            f\"no overlap: after",
      "    if share < 0.0:\n        raise RegistrationError(\n            f\"no overlap: after",
      "scans that do not overlap are registered anyway instead of refused with the reason",
      ("registration/test_registration.py",)),
    M("worst-initial-placement", "registration/engine.py",
      "scored.sort(key=lambda item: item[0])",
      "scored.sort(key=lambda item: -item[0])",
      "the registration starts from the worst initial placement",
      ("registration/test_registration.py",)),
    M("middle-level-skipped", "registration/engine.py",
      'steps += [_Step(final, level, "refine") for level in range(1, refine + 1)]',
      'steps += [_Step(final, level, "refine") for level in range(1, refine)]',
      "the middle pyramid level is never refined: coarser results",
      ("registration/test_registration.py",)),
    M("polish-mean-dropped", "registration/engine.py",
      "current = _average([first.transform, second.transform], step.stage)",
      "current = first.transform",
      "one polish's sampling noise is kept instead of the mean of two",
      ("registration/test_registration.py",)),
    M("registration-input-not-clamped", "resample/scans.py",
      "prepared = np.clip(values, low, high).astype(dtype, copy=False)",
      "prepared = values.astype(dtype, copy=False)",
      "metal and padding values stretch the metric's histogram",
      ("resample/test_resampling.py",)),
    M("not-ct-registered", "pair/register.py",
      '        if analysis.kind == "not-ct":\n'
      '            raise RegistrationError(f"{role} image is {analysis.summary}")',
      "        pass",
      "an image that is not a CT (an MR, a label map) is registered as if it were one",
      ("pair/test_api_checks.py",)),
    M("integer-output-truncated", "resample/scans.py",
      "                    values += 0.5\n",
      "                    values += 0.0\n",
      "integer outputs are truncated instead of rounded: a bias of half a HU",
      ("resample/test_resampling.py",)),
    M("bspline-overshoot-kept", "resample/scans.py",
      "                    np.clip(values, value_range[0], value_range[1], out=values)\n",
      "                    pass\n",
      "B-spline outputs overshoot below air next to bone",
      ("resample/test_resampling.py",)),
    M("fill-not-over-padding", "resample/scans.py",
      "                np.copyto(out[region], fill, where=inside == 0)\n",
      "",
      "output voxels on the moving padding get air, not the fill the user asked for",
      ("resample/test_fill.py", "resample/test_resampling.py")),
    # --- background, padding region, masks, morphology ----------------------------------------------
    M("corner-median-upper", "padding/analysis.py",
      "return sorted(corners)[3]",
      "return sorted(corners)[4]",
      "the corner value is the upper median, not Slicer's",
      ("padding/test_background.py",)),
    M("padding-counted-as-body", "padding/analysis.py",
      "        np.logical_and(tissue, valid.view(bool), out=tissue)\n",
      "",
      "padding above the body threshold (0 HU) becomes part of the body mask",
      ("padding/test_background.py", "registration/test_registration.py")),
    M("one-face-region-is-padding", "padding/region.py",
      "reach.items() if count >= 2)",
      "reach.items() if count >= 1)",
      "tissue at the padding value touching one face is taken for padding",
      ("padding/test_padding_region.py", "padding/test_background.py")),
    M("partial-padding-blocks-left-out", "padding/region.py",
      "_fill_blocks(candidate, dilate_box(core, (1, 1, 1)) & partial, factors, region)",
      "_fill_blocks(candidate, core, factors, region)",
      "padding voxels along the FOV edge are missed: a ring of padding stays in the output",
      ("padding/test_padding_region.py", "padding/test_background.py")),
    M("mask-block-half-outside-valid", "resample/valid_mask.py",
      "classes[inside & all_valid] = 1",
      "classes[all_valid] = 1",
      "fixed blocks that reach past the moving image are marked as real data",
      ("resample/test_mask_mapping.py", "resample/test_fill.py")),
    M("mask-edge-half-voxel-lost", "resample/valid_mask.py",
      "inside &= (continuous >= -0.5) & (continuous < moving_size[component] - 0.5)",
      "inside &= (continuous >= 0.0) & (continuous < moving_size[component] - 0.5)",
      "the validity mask loses half a voxel along the moving image's edge",
      ("resample/test_mask_mapping.py",)),
    M("morphology-ball-too-large", "core/morphology.py",
      "reach = sum((d / (r + 0.5)) ** 2 for d, r in ((dx, rx), (dy, ry), (dz, rz)) if r > 0)",
      "reach = sum((d / (r + 1.0)) ** 2 for d, r in ((dx, rx), (dy, ry), (dz, rz)) if r > 0)",
      "dilation and erosion use a larger kernel than ITK's ball: body masks grow, couches stay",
      ("core/test_morphology.py",)),
    M("mask-not-eroded-at-fov", "core/pyramid.py",
      "        for _ in range(erode):\n",
      "        for _ in range(0):\n",
      "the metric samples next to the FOV edge, where interpolation blurs padding into data",
      ("registration/test_registration.py",)),
    M("z-scan-too-short", "registration/initialization.py",
      "reach = 0.5 * abs(fixed_extent - moving_extent) + 0.4 * min(fixed_extent, moving_extent)",
      "reach = 0.5 * abs(fixed_extent - moving_extent)",
      "scans shifted along the body axis start from a wrong placement",
      ("registration/test_registration.py",)),
    M("similarity-scale-lost", "core/affine.py",
      "            result.SetScale(scale)\n",
      "",
      "the scale a similarity stage found is dropped when the next stage starts from it",
      ("core/test_affine.py", "registration/test_registration.py")),
    # --- verdict, check ---------------------------------------------------------------------------
    M("verdict-best-check-wins", "quality/verdict.py",
      "verdict = max((check.level for check in checks), key=VERDICTS.index)",
      "verdict = min((check.level for check in checks), key=VERDICTS.index)",
      "the verdict is the best check's level, not the worst",
      ("quality/test_verdict.py",)),
    M("far-move-only-suspect", "quality/verdict.py",
      'level = "failed" if moved_mm >= MOVE_FAILED_MM else "suspect"',
      'level = "suspect"',
      "a result 20 mm off is only suspect",
      ("quality/test_verdict.py",)),
    M("air-dice-thresholds-swapped", "quality/verdict.py",
      "AIR_DICE_SUSPECT = 0.25\nAIR_DICE_FAILED = 0.15",
      "AIR_DICE_SUSPECT = 0.15\nAIR_DICE_FAILED = 0.25",
      "air that overlaps a little less than expected fails instead of being suspect",
      ("quality/test_verdict.py",)),
    M("scale-upper-bound-ignored", "quality/verdict.py",
      "if low < SCALE_SUSPECT[0] or high > SCALE_SUSPECT[1]:",
      "if low < SCALE_SUSPECT[0]:",
      "a 30 % stretch along one axis is called plausible",
      ("quality/test_verdict.py",)),
    M("body-dice-over-moving-padding", "quality/verdict.py",
      "region = (sitk.GetArrayViewFromImage(fixed_valid) > 0) & "
      "(sitk.GetArrayViewFromImage(moving_valid) > 0)",
      "region = sitk.GetArrayViewFromImage(fixed_valid) > 0",
      "body outlines are compared where the moving scan has no data (a FOV cut looks like a bad result)",
      ("quality/test_verdict.py", "registration/test_registration.py")),
    M("gain-threshold-fixed", "quality/verdict.py",
      "return floor + per_mismatch * (1.0 - min(max(correlation, 0.0), 1.0))",
      "return floor",
      "right results of two different patients are called not at the optimum",
      ("quality/test_verdict.py", "registration/test_registration.py")),
    M("check-error-names-wrong-scan", "pair/check.py",
      'role = "moving" if str(error).startswith("moving") else "fixed"',
      'role = "fixed" if str(error).startswith("moving") else "moving"',
      "check's error line names the other scan than the one at fault",
      ("pair/test_check.py",)),
    # --- reading inputs ---------------------------------------------------------------------------
    M("padding-value-read-unsigned", "io/images.py",
      "        return stored - 2**bits\n",
      "        return stored\n",
      "a Pixel Padding Value read unsigned (63536) is not taken as -2000",
      ("io/test_imageio.py", "padding/test_background.py")),
    M("padding-value-slope-ignored", "io/images.py",
      "DicomPadding(value_hu=value * slope + intercept,",
      "DicomPadding(value_hu=value + intercept,",
      "the Pixel Padding Value of a series with a rescale slope is converted to the wrong HU",
      ("io/test_imageio.py",)),
    M("crc-of-voxels-not-checked", "io/file_integrity.py",
      "    if zlib.crc32(array, facts.prefix_crc) == facts.stream_crc:\n        return True\n",
      "    return True\n",
      "a .nii.gz whose voxels are damaged without changing its length is read without a word",
      ("io/test_file_checks.py",)),
    M("truncated-nifti-accepted", "io/file_integrity.py",
      "        if present < header.data_bytes:\n",
      "        if present < 0:\n",
      "a .nii cut short is read with its missing voxels as 0",
      ("io/test_file_checks.py",)),
    M("series-with-fewest-slices", "io/dicom.py",
      "chosen = max(series_ids, key=lambda sid: (len(files_by_series[sid]), sid))",
      "chosen = min(series_ids, key=lambda sid: (len(files_by_series[sid]), sid))",
      "a folder with a scout and a CT series is read as the scout",
      ("io/test_dicom_series.py",)),
    M("one-missing-slice-unnoticed", "io/dicom.py",
      "missing = int(np.sum(np.maximum(jumps - 1, 0)))",
      "missing = int(np.sum(np.maximum(jumps - 2, 0)))",
      "a series missing single slices is stacked as if even: the scan is stretched",
      ("io/test_dicom_series.py",)),
    M("gap-interpolation-reversed", "io/dicom.py",
      "mixed = (1 - weight) * below.astype(np.float64) + weight * above",
      "mixed = weight * below.astype(np.float64) + (1 - weight) * above",
      "slices interpolated into a gap take their values from the wrong neighbour",
      ("io/test_dicom_series.py",)),
    M("single-slice-volume-accepted", "io/arguments.py",
      "if volume and min(size) < 2:",
      "if volume and min(size) < 1:",
      "a single slice reaches the registration and fails deep inside it",
      ("pair/test_api_checks.py",)),
    M("fill-range-not-checked", "resample/scans.py",
      "        if not low <= fill <= high:\n",
      "        if False:\n",
      "a fill the output type cannot hold fails only after the whole registration",
      ("pair/test_api_checks.py",)),
    # --- outputs ----------------------------------------------------------------------------------
    M("gzip-trailer-swapped", "io/volume_writers.py",
      'sink.write(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))',
      'sink.write(struct.pack("<II", size & 0xFFFFFFFF, crc & 0xFFFFFFFF))',
      "every .nii.gz output fails its gzip check in other readers",
      ("io/test_output_formats.py",)),
    M("zlib-checksum-wrong", "io/volume_writers.py",
      "chunks, threads=threads, checksum=zlib.adler32, checksum_start=1, strategy=strategy",
      "chunks, threads=threads, checksum=zlib.adler32, checksum_start=0, strategy=strategy",
      "every .mha output carries a wrong checksum",
      ("io/test_output_formats.py",)),
    M("qc-fusion-colours-swapped", "quality/picture.py",
      "return np.stack([fixed, registered, fixed], axis=-1)",
      "return np.stack([registered, fixed, registered], axis=-1)",
      "the QC fusion shows the fixed scan in green and the result in magenta, against its legend",
      ("quality/test_qc.py",)),
    M("qc-planes-upside-down", "quality/picture.py",
      "return plane if axis == 0 else plane[::-1, :]",
      "return plane",
      "coronal and sagittal QC planes show the head at the bottom",
      ("quality/test_qc.py",)),
    # --- cohort: inputs, resume, running, reports -------------------------------------------------
    M("list-paths-relative-to-cwd", "cohort/inputs.py",
      "return path if os.path.isabs(path) else os.path.normpath(os.path.join(base, path))",
      "return path if os.path.isabs(path) else os.path.normpath(path)",
      "relative paths in a --moving-list are taken from the current folder, not the list's",
      ("cohort/test_cohort_inputs.py",)),
    M("incomplete-case-taken-as-done", "cohort/resume.py",
      "    if not outputs_complete(previous, out_dir, names):\n"
      "        return CasePlan(case, RUN, previous)\n",
      "",
      "a rerun keeps a case whose output was deleted or cut short",
      ("cohort/test_cohort_run.py",)),
    M("resume-ignores-changed-options", "cohort/resume.py",
      "    if made != wanted:\n",
      "    if False:\n",
      "rerunning with other options silently keeps the results made with the old ones",
      ("cohort/test_cohort_run.py", "cohort/test_cohort_safety.py")),
    M("edited-input-not-noticed", "cohort/case.py",
      '"bytes": stat.st_size,\n                "mtime_ns": stat.st_mtime_ns,\n',
      '"bytes": stat.st_size,\n',
      "a moving scan touched since its case finished keeps the old results on a rerun",
      ("cohort/test_cohort_resume.py", "cohort/test_cohort_run.py", "cohort/test_cohort_safety.py")),
    M("content-sample-ignored", "cohort/case.py",
      '"mtime_ns": stat.st_mtime_ns,\n                "sample": sample,\n',
      '"mtime_ns": stat.st_mtime_ns,\n',
      "a same-size edit whose modification time was put back keeps the stale results on a rerun",
      ("cohort/test_cohort_resume.py",)),
    M("live-lock-taken-over", "cohort/lock.py",
      'return f"is in use by another run ({where}); wait for it to finish or use another --out"',
      "return None",
      "a second run into a folder a live run is using goes ahead, and the two destroy each other's work",
      ("cohort/test_cohort_lock.py",)),
    M("lost-case-cleans-unclaimed", "cohort/case.py",
      'if on_disk is not None and on_disk.get("run_id") == task.run_id:',
      "if not foreign:",
      "a worker lost before its claim removes files an earlier attempt left, not its own",
      ("cohort/test_cohort_faults.py",)),
    M("failed-verdict-trusted", "cohort/case.py",
      'if quality.get("verdict") == "failed":\n        reason = f"quality verdict failed',
      'if quality.get("verdict") == "suspect":\n        reason = f"quality verdict failed',
      'results with a "failed" verdict are marked trustworthy',
      ("cohort/test_cohort_run.py", "cli/test_cli.py")),
    M("fractional-fill-accepted", "resample/scans.py",
      "        if not float(fill).is_integer():\n",
      "        if False:\n",
      "--fill 0.5 on an integer scan is silently rounded",
      ("cohort/test_cohort_run.py", "cohort/test_cohort_safety.py", "cli/test_cli.py")),
    M("failed-case-leaves-outputs", "cohort/case.py",
      '    if report["status"] != "ok":  # no half-made case',
      '    if False:  # no half-made case',
      "a case that fails half-way leaves some of its outputs behind",
      ("cohort/test_cohort_faults.py", "cohort/test_cohort_run.py")),
    M("failed-verdict-exit-0", "cohort/run.py",
      'bad = counts["failed"] or counts["cancelled"] or counts["verdicts"]["failed"]',
      'bad = counts["failed"] or counts["cancelled"]',
      'a cohort with a "failed" verdict exits 0, so scripts take it as good',
      ("cli/test_cli.py", "cohort/test_cohort_run.py")),
    M("fill-checked-per-case-only", "cohort/run.py",
      "    _check_fill(cases, case_options.fill)\n",
      "",
      "a --fill no output can hold is found case by case instead of before any work",
      ("cohort/test_cohort_safety.py", "cohort/test_cohort_run.py", "cli/test_cli.py")),
    M("hard-link-to-input-overwritten", "cohort/outputs.py",
      "for key in (os.path.realpath(output), _inode(output)):",
      "for key in (os.path.realpath(output),):",
      "an output path that is a hard link to an input is written over",
      ("cohort/test_cohort_safety.py",)),
    M("foreign-summary-replaced", "cohort/outputs.py",
      "if os.path.exists(path) and not overwrite and not is_own_summary(path, kind):",
      "if False:",
      "someone else's report.json in the output folder is replaced without --overwrite",
      ("cohort/test_cohort_safety.py", "cohort/test_cohort_run.py")),
    M("cancelled-counted-as-failed", "cohort/summary.py",
      '"failed": sum(1 for case in cases if case.get("status") == "failed"),',
      '"failed": sum(1 for case in cases if case.get("status") in ("failed", "cancelled")),',
      "the summary counts cancelled cases as failed",
      ("cohort/test_cohort_report.py", "cohort/test_cohort_run.py", "cohort/test_cohort_faults.py")),
    M("csv-own-verdict-lost", "cohort/summary.py",
      '"own_verdict": quality.get("own_verdict", quality.get("verdict")),',
      '"own_verdict": quality.get("verdict"),',
      "report.csv loses a case's own verdict when the cohort review lowered it",
      ("cohort/test_cohort_report.py", "cohort/test_cohort_review.py")),
    M("html-not-escaped", "cohort/report_page.py",
      'return html.escape("" if value is None else str(value), quote=True)',
      'return "" if value is None else str(value)',
      "a case id or error with < or & breaks the cohort page (or injects markup)",
      ("cohort/test_cohort_report.py", "cohort/test_cohort_run.py")),
    M("html-suspect-before-failed", "cohort/report_page.py",
      'RANK = {"error": 0, "failed": 1, "suspect": 2, "cancelled": 3, "ok": 4}',
      'RANK = {"error": 0, "failed": 2, "suspect": 1, "cancelled": 3, "ok": 4}',
      "the cohort page lists suspect cases before failed ones",
      ("cohort/test_cohort_report.py", "cohort/test_cohort_run.py")),
    M("outlier-not-lowered", "cohort/review.py",
      'if notes and quality.get("verdict") == "ok":',
      'if notes and quality.get("verdict") == "suspect":',
      "a case far from the rest of its cohort keeps its ok",
      ("cohort/test_cohort_review.py",)),
    M("low-outlier-direction", "cohort/review.py",
      '(rule.bad_when == "low" and score < -OUTLIER_SCORE)',
      '(rule.bad_when == "low" and score > OUTLIER_SCORE)',
      "a case with a much lower correlation than its cohort is not flagged (a much higher one is)",
      ("cohort/test_cohort_review.py",)),
    M("mad-not-scaled", "cohort/review.py",
      "return median, max(MAD_TO_SIGMA * mad, rule.floor)",
      "return median, max(mad, rule.floor)",
      "cohort outliers are flagged at 3.4 instead of 5 standard deviations",
      ("cohort/test_cohort_review.py",)),
    M("no-warning-for-failed-verdict", "cohort/progress.py",
      'if report.get("trustworthy") is False and status == "ok":',
      'if False:',
      'no warning line for a case whose verdict is "failed"',
      ("cohort/test_cohort_run.py", "cli/test_cli.py")),
    M("eta-counts-finished-cases", "cohort/progress.py",
      "remaining = (self.to_run - self.finished) * elapsed / self.finished",
      "remaining = self.to_run * elapsed / self.finished",
      "the ETA counts the finished cases as still to do",
      ("cohort/test_cohort_run.py",)),
    M("killed-worker-case-cancelled", "cohort/backends.py",
      'on_done(task, self._lost(worker, task, fixed, "failed"))',
      'on_done(task, self._lost(worker, task, fixed, "cancelled"))',
      "a case whose worker was killed (out of memory) is reported cancelled, not failed",
      ("cohort/test_cohort_faults.py",)),
    M("workers-never-retire", "cohort/backends.py",
      "worker.retiring = worker.cases >= self.cases_per_worker",
      "worker.retiring = False",
      "worker processes never retire: memory grows over a long cohort",
      ("cohort/test_cohort_faults.py", "cohort/test_cohort_run.py")),
    M("dask-waiting-case-not-resent", "cohort/dask_backend.py",
      "            if killed and not _started(future, self.futures) and attempts < MAX_ATTEMPTS:\n",
      "            if False:\n",
      "a case that only waited on a Dask worker that died fails instead of running elsewhere",
      ("cohort/test_cohort_dask.py",)),
    M("dask-workers-trim-malloc", "cohort/dask_backend.py",
      '        "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,\n',
      "",
      "every case on our local Dask cluster runs about 6 % slower (glibc's mmap threshold pinned)",
      ("cohort/test_cohort_dask.py",)),
    M("batch-fill-ignored", "cohort/batch.py",
      "        fill=settings.fill,\n",
      "        fill=None,\n",
      "the 0.1 batch API writes the moving air level where the user asked for another fill",
      ("resample/test_fill.py",)),
    M("demo-reuses-other-inputs", "cli/demo.py",
      "    return (\n        images_match\n        and np.array_equal(truth.GetParameters(),",
      "    return (\n        True\n        and np.array_equal(truth.GetParameters(),",
      "the demo reuses inputs someone changed and reports an accuracy that is not theirs",
      ("cli/test_cli.py",)),
    # --- labels, apply, transforms ----------------------------------------------------------------
    M("labels-cut-at-one-half", "resample/labels.py",
      "wins = (share >= level) & (share > best_share[local])",
      "wins = (share >= 0.5) & (share > best_share[local])",
      "thin structures (spinal cord, vessels) erode or vanish when carried",
      ("resample/test_labels.py",)),
    M("labels-of-another-space-accepted", "resample/labels.py",
      "    if share < MIN_SHARE_INSIDE_SCAN:\n",
      "    if share < 0.0:\n",
      "a label map saved without its geometry is carried to the wrong place without a word",
      ("resample/test_labels.py",)),
    M("label-region-a-voxel-short", "resample/labels.py",
      "lower = np.array(structure.lower[::-1], dtype=float) - 1.0",
      "lower = np.array(structure.lower[::-1], dtype=float)",
      "carried structures lose their edge voxels on one side",
      ("resample/test_labels.py",)),
    M("apply-blends-label-values", "pair/apply.py",
      "    if analysis.kind == \"not-ct\":\n        _refuse_label_like(image)\n",
      "",
      "apply without --labels interpolates a label map into meaningless values",
      ("pair/test_apply.py",)),
    M("apply-non-ct-fill-air", "pair/apply.py",
      "fill_value = float(analysis.corner_median if fill is None else fill)",
      "fill_value = float(analysis.air_value if fill is None else fill)",
      "an MR or dose map gets -1024 around it instead of its own background",
      ("pair/test_apply.py",)),
    M("apply-stems-collide", "pair/apply.py",
      'stems.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")',
      "stems.append(stem)",
      "apply refuses the second of two inputs with the same name",
      ("pair/test_apply.py",)),
    M("apply-no-coverage-check", "pair/apply.py",
      "    if coverage == 0.0:\n        raise ValueError(",
      "    if False:\n        raise ValueError(",
      "a transform of another pair gives an output of pure fill without a word",
      ("pair/test_apply.py",)),
    M("elastix-initial-order", "io/transform_files.py",
      "return affine_about(sitk.CompositeTransform([transform, initial]), center)",
      "return affine_about(sitk.CompositeTransform([initial, transform]), center)",
      "elastix results with an initial transform are composed in the wrong order",
      ("pair/test_check.py",)),
    M("nonlinear-checked-as-affine", "io/transform_files.py",
      "    if not transform.IsLinear():\n        name = transform.GetName()",
      "    if False:\n        name = transform.GetName()",
      "check judges a B-spline result by its local linear part without saying so",
      ("pair/test_check.py",)),
    M("elastix-euler-zyx-ignored", "io/transform_files.py",
      "        euler.SetComputeZYX(compute_zyx)\n",
      "",
      "elastix Euler results written with ComputeZYX get the wrong rotation",
      ("pair/test_check.py",)),
    # --- command line, Slicer ---------------------------------------------------------------------
    M("check-suspect-exits-1", "cli/commands.py",
      'return EXIT_FAILED if result["verdict"] == "failed" else EXIT_OK',
      'return EXIT_FAILED if result["verdict"] != "ok" else EXIT_OK',
      'check exits 1 for a "suspect" verdict, breaking scripts that stop on 1',
      ("pair/test_check.py",)),
    M("inspect-passes-slice-gaps", "cli/commands.py",
      "if loaded.slice_problem is not None and not arguments.allow_slice_gaps:",
      "if False:",
      "inspect says nothing of a series register would refuse",
      ("cli/test_inputs_in_register.py", "io/test_dicom_series.py", "cli/test_cli.py")),
    M("slicer-batch-overrides-jobs", "cli/slicer_batch.py",
      "if serial and not given_jobs:",
      "if serial:",
      "inside Slicer without workers, the user's --jobs is overridden",
      ("test_module_static.py",)),
    M("ras-flip-wrong", "mrml/volume_nodes.py",
      "_FLIP = np.diag([-1.0, -1.0, 1.0, 1.0])",
      "_FLIP = np.diag([-1.0, 1.0, 1.0, 1.0])",
      "volumes and transforms land mirrored front-back in Slicer",
      ("mrml/test_mrml_bridge.py",)),
    M("transform-node-to-parent", "mrml/volume_nodes.py",
      "transform_node.SetMatrixTransformFromParent(_vtk_matrix(ras_matrix_from_transform(transform)))",
      "transform_node.SetMatrixTransformToParent(_vtk_matrix(ras_matrix_from_transform(transform)))",
      "the transform node moves the moving volume the wrong way (inverse transform)",
      ("mrml/test_mrml_bridge.py",)),
    M("parent-transform-ignored", "mrml/volume_nodes.py",
      "        ijk_to_ras = to_world @ ijk_to_ras\n",
      "",
      "a volume under a transform is registered where it was before the transform",
      ("mrml/test_mrml_bridge.py",)),
    M("scene-settles-before-selectors", "panel/scene_watch.py",
      "SETTLED_PRIORITY = -10.0",
      "SETTLED_PRIORITY = 10.0",
      "after a scene import the panel re-applies its selection before the selectors rebuild",
      ("panel/test_panel_support.py",)),
    M("scene-busy-forgotten", "panel/scene_watch.py",
      "return self._busy or bool(self._scene.IsImporting()) or bool(self._scene.IsClosing())",
      "return bool(self._scene.IsImporting()) or bool(self._scene.IsClosing())",
      "the panel reads selectors in the moment after an import, before they rebuilt",
      ("panel/test_panel_support.py",)),
    M("findings-cache-ignores-content", "panel/volume_findings.py",
      "        if cached is not None and cached[0] == key:\n            return cached[1]\n",
      "        if cached is not None:\n            return cached[1]\n",
      "the panel shows the findings of a volume's old voxels after they changed",
      ("panel/test_panel_support.py",)),
    M("findings-fate-swapped", "panel/volume_findings.py",
      'fate = "replaced" if role == "moving" else "ignored by the metric"',
      'fate = "ignored by the metric" if role == "moving" else "replaced"',
      "the panel says the fixed scan's padding is replaced and the moving one's ignored",
      ("panel/test_panel_support.py",)),
    M("status-failed-not-warned", "panel/result_lines.py",
      '        if verdict == "failed":\n            line += " (result kept, but do not trust it)"',
      '        if verdict == "suspect":\n            line += " (result kept, but do not trust it)"',
      'the panel does not warn against using a result whose verdict is "failed"',
      ("panel/test_panel_support.py",)),
    M("accuracy-ring-threshold", "quality/accuracy.py",
      "return int(np.count_nonzero((values < threshold) & (valid > 0)))",
      "return int(np.count_nonzero((values < threshold) & (valid > 1)))",
      "the demo and the tests count no gray-ring voxel, whatever the output",
      ("resample/test_resampling.py", "cli/test_cli.py")),
    M("reader-notes-repeated", "io/itk_messages.py",
      "        if note not in notes:\n            notes.append(note)\n",
      "        notes.append(note)\n",
      "the same reader warning is repeated once per slice in the notes",
      ("io/test_imageio.py", "cli/test_inputs_in_register.py")),
]  # fmt: skip


# ---------------------------------------------------------------------------------------------


def check_mutants(mutants: list[Mutant], root: str) -> list[str]:
    """Problems that make the list stale: a snippet that does not occur exactly once, a bad name."""
    problems, names = [], set()
    for mutant in mutants:
        if mutant.name in names:
            problems.append(f"{mutant.name}: the name is used twice")
        names.add(mutant.name)
        if mutant.original == mutant.replacement:
            problems.append(f"{mutant.name}: the replacement is the original")
        path = mutant.file(root)
        if not os.path.isfile(path):
            problems.append(f"{mutant.name}: {os.path.relpath(path, root)} does not exist")
            continue
        with open(path, encoding="utf-8") as handle:
            found = handle.read().count(mutant.original)
        if found != 1:
            problems.append(
                f"{mutant.name}: its snippet occurs {found} times in {os.path.relpath(path, root)} "
                "(must be exactly once); rewrite the mutant for today's code"
            )
        for test_file in mutant.first:
            if not os.path.isfile(os.path.join(root, "Testing", test_file)):
                problems.append(f"{mutant.name}: Testing/{test_file} does not exist")
    return problems


def test_files(root: str) -> list[str]:
    """Every test file, as a path under Testing/ ("pair/test_apply.py"): the tests mirror the package."""
    folder = os.path.join(root, "Testing")
    found = []
    for directory, subfolders, names in os.walk(folder):
        subfolders[:] = sorted(name for name in subfolders if name not in ("benchmarks", "__pycache__"))
        relative = os.path.relpath(directory, folder)
        for name in names:
            if re.fullmatch(r"test_.*\.py", name):
                found.append(name if relative == os.curdir else f"{relative}/{name}".replace(os.sep, "/"))
    return sorted(found)


def shared_data_folder() -> str:
    """Where the suite finds the real CT samples (as Testing/conftest.py does), for the copies."""
    return os.environ.get("CTAR_SHARED_DATA", os.path.join(os.path.dirname(PROJECT), "shared", "data"))


def environment(copy: str) -> dict:
    env = dict(os.environ)
    source = os.path.join(copy, "CTAffineRegister")
    env["PYTHONPATH"] = source + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # a mutant's bytecode must never outlive it
    env["CTAR_SHARED_DATA"] = shared_data_folder()
    return env


def make_copy(destination: str) -> str:
    shutil.copytree(PROJECT, destination, ignore=IGNORED, symlinks=True)
    imported = subprocess.run(
        [sys.executable, "-c", "import CTAffineRegisterLib; print(CTAffineRegisterLib.__file__)"],
        cwd=destination,
        env=environment(destination),
        capture_output=True,
        text=True,
    )
    where = imported.stdout.strip()
    if imported.returncode != 0 or not os.path.realpath(where).startswith(os.path.realpath(destination)):
        raise SystemExit(
            f"error: the copy in {destination} does not import its own CTAffineRegisterLib "
            f"(imported {where or imported.stderr.strip()[-300:]!r}); nothing was run"
        )
    return destination


@dataclass
class Outcome:
    mutant: Mutant
    killed: bool
    seconds: float
    by: str  # the first failing test, "timeout", or "" for a survivor


_RUNNING: dict[int, subprocess.Popen] = {}
_RUNNING_LOCK = threading.Lock()


def run_pytest(copy: str, files: list[str], timeout: float) -> tuple[int, str]:
    """(exit status, output) of pytest on the copy's test ``files``; status None-like -1 on timeout."""
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += [os.path.join("Testing", name) for name in files]
    process = subprocess.Popen(
        command,
        cwd=copy,
        env=environment(copy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group: a timeout ends every process it started
    )
    with _RUNNING_LOCK:
        _RUNNING[process.pid] = process
    try:
        output, _ = process.communicate(timeout=timeout)
        return process.returncode, output
    except subprocess.TimeoutExpired:
        _kill_group(process)
        output, _ = process.communicate()
        return -1, output
    finally:
        with _RUNNING_LOCK:
            _RUNNING.pop(process.pid, None)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def first_failure(output: str) -> str:
    match = re.search(r"^(?:FAILED|ERROR) (\S+)", output, re.MULTILINE)
    if match:
        return match.group(1)
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1][:120] if lines else "no output"


def run_mutant(mutant: Mutant, copy: str, timeout: float) -> Outcome:
    path = mutant.file(copy)
    with open(path, encoding="utf-8") as handle:
        original = handle.read()
    started = time.monotonic()
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(original.replace(mutant.original, mutant.replacement, 1))
        every = test_files(copy)
        phases = [list(mutant.first), [name for name in every if name not in mutant.first]]
        for files in phases:
            if not files:
                continue
            left = timeout - (time.monotonic() - started)
            status, output = run_pytest(copy, files, max(left, 1.0))
            if status == -1:
                return Outcome(mutant, True, time.monotonic() - started, "timeout")
            if status == 5:  # nothing collected: the copy is broken, not the mutant caught
                raise SystemExit(f"error: pytest collected no tests in {copy} for {mutant.name}")
            if status != 0:
                return Outcome(mutant, True, time.monotonic() - started, first_failure(output))
        return Outcome(mutant, False, time.monotonic() - started, "")
    finally:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(original)


def baseline(copy: str, timeout: float) -> float:
    """The unmutated suite must pass in the copy, or every mutant would look killed."""
    started = time.monotonic()
    status, output = run_pytest(copy, test_files(copy), timeout)
    if status != 0:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise SystemExit(f"error: the suite fails in the unmutated copy (status {status}):\n{tail}")
    return time.monotonic() - started


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these mutants")
    parser.add_argument("--issue", action="store_true", help="run only the mutants of issue 15")
    parser.add_argument("--list", action="store_true", help="list the mutants (and stale ones), run nothing")
    parser.add_argument("--jobs", type=int, default=1, help="mutants at a time, each in its own copy")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per mutant")
    parser.add_argument("--no-baseline", action="store_true", help="skip the run of the unmutated suite")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copies")
    arguments = parser.parse_args(argv)

    problems = check_mutants(MUTANTS, PROJECT)
    if arguments.list:
        stale = {problem.split(":", 1)[0] for problem in problems}
        for mutant in MUTANTS:
            mark = "STALE" if mutant.name in stale else ("issue" if mutant.issue else "")
            print(f"{mutant.name:<40} {mark:<6} {mutant.path:<22} {mutant.effect}")
        modules = sorted({mutant.path for mutant in MUTANTS})
        print(f"\n{len(MUTANTS)} mutants in {len(modules)} files")
    if problems:
        print("\nstale mutant list:\n  " + "\n  ".join(problems), file=sys.stderr)
        return 2
    if arguments.list:
        return 0

    chosen = MUTANTS
    if arguments.issue:
        chosen = [mutant for mutant in chosen if mutant.issue]
    if arguments.only:
        known = {mutant.name for mutant in MUTANTS}
        unknown = [name for name in arguments.only if name not in known]
        if unknown:
            parser.error(f"no mutant named {', '.join(unknown)} (see --list)")
        chosen = [mutant for mutant in chosen if mutant.name in arguments.only]
    if not os.path.isdir(shared_data_folder()):
        print(f"note: no real CT samples at {shared_data_folder()}: their tests skip", file=sys.stderr)

    jobs = max(1, min(arguments.jobs, len(chosen)))
    work = tempfile.mkdtemp(prefix="ctar-mutation-")
    outcomes: list[Outcome] = []
    try:
        copies = [make_copy(os.path.join(work, f"copy{index}")) for index in range(jobs)]
        print(f"{len(chosen)} mutants, {jobs} at a time, in {work}", flush=True)
        if not arguments.no_baseline:
            seconds = baseline(copies[0], arguments.timeout)
            print(f"unmutated suite passes in the copy: {seconds:.0f} s", flush=True)
        free = list(copies)
        free_lock = threading.Lock()

        def one(mutant: Mutant) -> Outcome:
            with free_lock:
                copy = free.pop()
            try:
                return run_mutant(mutant, copy, arguments.timeout)
            finally:
                with free_lock:
                    free.append(copy)

        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            for outcome in pool.map(one, chosen):
                outcomes.append(outcome)
                state = "killed  " if outcome.killed else "SURVIVED"
                by = f"  by {outcome.by}" if outcome.killed else f"  ({outcome.mutant.effect})"
                print(f"{state} {outcome.seconds:6.0f} s  {outcome.mutant.name}{by}", flush=True)
    except KeyboardInterrupt:
        with _RUNNING_LOCK:
            for process in _RUNNING.values():
                _kill_group(process)
        print("\nstopped; the results so far:", file=sys.stderr)
    finally:
        if arguments.keep:
            print(f"copies kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return report(outcomes)


def report(outcomes: list[Outcome]) -> int:
    if not outcomes:
        return 1
    survivors = [outcome for outcome in outcomes if not outcome.killed]
    print(f"\n{len(outcomes) - len(survivors)} of {len(outcomes)} mutants killed", end="")
    print(f", {len(survivors)} survived ({100.0 * len(survivors) / len(outcomes):.0f}%)")
    for outcome in survivors:
        print(f"  survived: {outcome.mutant.name} ({outcome.mutant.path}): {outcome.mutant.effect}")
    issue = [outcome for outcome in outcomes if outcome.mutant.issue]
    if issue:
        alive = sum(1 for outcome in issue if not outcome.killed)
        print(f"issue 15's surviving bugs: {alive} of {len(issue)} still survive")
    return 1 if survivors else 0


if __name__ == "__main__":
    sys.exit(main())
