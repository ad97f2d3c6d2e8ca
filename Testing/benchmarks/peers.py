"""The tools the benchmark compares, each run as a child process on files, as a user would run it.

Every run reads the fixed and moving scans from disk, registers, resamples the moving scan onto the
fixed grid and writes it. Wall time is that whole child process; peak memory is the child's
``ru_maxrss`` from ``os.wait4`` (the kernel folds in any descendants it waited for). The Python-based
tools also report their in-process register+resample time ("core"), which leaves out interpreter
start-up, imports and file I/O.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import SimpleITK as sitk

from CTAffineRegisterLib.io.transform_files import read_transform

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_worker.py"
LAUNCHER = HERE / "_launch.py"
PYTHON = sys.executable


@dataclass
class ToolRun:
    """What one run of one tool produced and cost."""

    tool: str
    wall_s: float
    core_s: Optional[float]
    peak_mb: float
    transform: Optional[sitk.Transform]
    registered: Optional[sitk.Image]
    error: Optional[str] = None


@dataclass
class ChildResult:
    wall_s: float
    peak_mb: float  # largest single process of the tree (ru_maxrss semantics)
    returncode: int
    log: Path
    tree_peak_mb: Optional[float] = None  # largest sampled sum over the whole process tree


def run_child(command: list[str], log: Path, sample_tree: bool = False) -> ChildResult:
    """Run ``command`` through ``_launch.py`` and return its wall time and its own peak RSS.

    Wall time is measured by the launcher around the tool alone, so it leaves out the launcher's
    own start-up; output goes to ``log``. With ``sample_tree`` the summed RSS of every process
    under the launcher is also sampled every 50 ms: what parallel workers need together, which
    ``ru_maxrss`` (one process at a time) cannot tell.
    """
    report = log.with_suffix(".usage.json")
    tree_peak = None
    with open(log, "wb") as sink:
        launcher = subprocess.Popen(
            [PYTHON, str(LAUNCHER), str(report), *command], stdout=sink, stderr=subprocess.STDOUT
        )
        if sample_tree:
            tree_peak = 0
            while launcher.poll() is None:
                tree_peak = max(tree_peak, _tree_rss_kb(launcher.pid))
                time.sleep(0.05)
        launcher.wait()
    usage = json.loads(report.read_text())
    tree_mb = None if tree_peak is None else tree_peak / 1024.0
    return ChildResult(usage["wall_s"], usage["maxrss_kb"] / 1024.0, usage["returncode"], log, tree_mb)


def _tree_rss_kb(root: int) -> int:
    """Summed VmRSS (kB) of ``root`` and all its descendants, from /proc (Linux only; 0 elsewhere)."""
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        try:
            with open(f"/proc/{pid}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0)
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (OSError, ValueError):
            continue  # the process ended while we looked
    return total


def _failure(tool: str, child: ChildResult) -> ToolRun:
    tail = child.log.read_text(errors="replace").strip().splitlines()[-3:]
    return ToolRun(
        tool, child.wall_s, None, child.peak_mb, None, None, f"exit {child.returncode}: {' | '.join(tail)}"
    )


class PythonTool:
    """A tool run through ``_worker.py`` (this project, the seed recipe, picsl-greedy)."""

    def __init__(self, name: str, worker_key: str):
        self.name = name
        self.worker_key = worker_key

    def available(self) -> tuple[bool, str]:
        return True, ""

    def run(self, fixed: Path, moving: Path, workdir: Path) -> ToolRun:
        workdir.mkdir(parents=True, exist_ok=True)
        command = [PYTHON, str(WORKER), self.worker_key, str(fixed), str(moving), str(workdir)]
        child = run_child(command, workdir / "log.txt")
        if child.returncode != 0:
            return _failure(self.name, child)
        core = json.loads((workdir / "timing.json").read_text())["core_s"]
        transform = sitk.ReadTransform(str(workdir / "transform.tfm"))
        registered = sitk.ReadImage(str(workdir / "registered.mha"))
        return ToolRun(self.name, child.wall_s, core, child.peak_mb, transform, registered)


class OursTool(PythonTool):
    def __init__(self) -> None:
        super().__init__("ours", "ours")

    def available(self) -> tuple[bool, str]:
        try:
            from CTAffineRegisterLib.pair import register as pipeline  # noqa: F401
        except ImportError:
            try:
                from CTAffineRegisterLib.padding import analysis as background  # noqa: F401
                from CTAffineRegisterLib.registration import engine as registration  # noqa: F401
                from CTAffineRegisterLib.resample import scans as resampling  # noqa: F401
            except ImportError as error:
                return False, f"CTAffineRegisterLib not usable yet ({error})"
            return (
                True,
                "pipeline.register_pair missing: ran background + register_images + resample_to_fixed",
            )
        return True, ""


class GreedyTool(PythonTool):
    def __init__(self) -> None:
        super().__init__("greedy", "greedy")

    def available(self) -> tuple[bool, str]:
        try:
            import picsl_greedy  # noqa: F401
        except ImportError:
            return False, "picsl-greedy not installed (pip install picsl-greedy)"
        return True, ""


# --------------------------------------------------------------------------------------------
# elastix: the CLI with its documented default affine parameter map


ELASTIX_AFFINE_PARAMETERS = """\
// elastix's default "affine" parameter map (elx::ParameterObject::GetDefaultParameterMap),
// with centre-of-gravity initialisation. Only the output settings differ from the defaults:
// -1024 outside the moving scan (as the seed recipe uses) and an .mha result image.
(FixedInternalImagePixelType "float")
(MovingInternalImagePixelType "float")
(FixedImageDimension 3)
(MovingImageDimension 3)
(UseDirectionCosines "true")
(Registration "MultiResolutionRegistration")
(Transform "AffineTransform")
(Metric "AdvancedMattesMutualInformation")
(Optimizer "AdaptiveStochasticGradientDescent")
(FixedImagePyramid "FixedSmoothingImagePyramid")
(MovingImagePyramid "MovingSmoothingImagePyramid")
(Interpolator "LinearInterpolator")
(Resampler "DefaultResampler")
(ResampleInterpolator "FinalBSplineInterpolator")
(FinalBSplineInterpolationOrder 3)
(NumberOfResolutions 4)
(MaximumNumberOfIterations 256)
(ImageSampler "RandomCoordinate")
(NumberOfSpatialSamples 2048)
(CheckNumberOfSamples "true")
(MaximumNumberOfSamplingAttempts 8)
(NewSamplesEveryIteration "true")
(NumberOfSamplesForExactGradient 4096)
(AutomaticParameterEstimation "true")
(AutomaticScalesEstimation "true")
(AutomaticTransformInitialization "true")
(AutomaticTransformInitializationMethod "CenterOfGravity")
(HowToCombineTransforms "Compose")
(WriteIterationInfo "false")
(WriteResultImage "true")
(ResultImageFormat "mha")
(ResultImagePixelType "short")
(DefaultPixelValue -1024)
"""


class ElastixTool:
    name = "elastix"

    def __init__(self, threads: int = 2):
        self.threads = threads
        self.executable = shutil.which("elastix")

    def available(self) -> tuple[bool, str]:
        if self.executable is None:
            return False, "elastix CLI not on PATH (apt-get install elastix)"
        return True, ""

    def version(self) -> str:
        if self.executable is None:
            return "not installed"
        out = subprocess.run([self.executable, "--version"], capture_output=True, text=True).stdout
        return out.strip().replace("elastix version: ", "")

    def run(self, fixed: Path, moving: Path, workdir: Path) -> ToolRun:
        workdir.mkdir(parents=True, exist_ok=True)
        parameters = workdir / "affine.txt"
        parameters.write_text(ELASTIX_AFFINE_PARAMETERS)
        command = [self.executable, "-f", str(fixed), "-m", str(moving), "-p", str(parameters)]
        command += ["-out", str(workdir), "-threads", str(self.threads)]
        child = run_child(command, workdir / "log.txt")
        if child.returncode != 0:
            return _failure(self.name, child)
        transform = elastix_affine(workdir / "TransformParameters.0.txt")
        registered = sitk.ReadImage(str(workdir / "result.0.mha"))
        return ToolRun(self.name, child.wall_s, None, child.peak_mb, transform, registered)


def elastix_affine(path: Path) -> sitk.AffineTransform:
    """elastix's result as a fixed→moving ITK transform (the project's own reader, as ``check`` uses)."""
    return read_transform(str(path))


def greedy_version() -> str:
    try:
        from importlib.metadata import version

        return f"picsl-greedy {version('picsl-greedy')}"
    except Exception:  # noqa: BLE001 - any failure just means "unknown"
        return "not installed"


def python_baseline_mb(workdir: Path) -> float:
    """Peak RSS of a Python process that only imports SimpleITK and numpy: the floor under every
    Python-based tool's figure, worth subtracting when comparing with the elastix binary."""
    workdir.mkdir(parents=True, exist_ok=True)
    child = run_child([PYTHON, "-c", "import numpy, SimpleITK"], workdir / "baseline.txt")
    return child.peak_mb


def all_tools() -> list:
    """Tools in their default order; the runner rotates this order between repeats."""
    return [OursTool(), PythonTool("seed", "seed"), ElastixTool(), GreedyTool()]


def transform_points(transform: sitk.Transform, points: np.ndarray) -> np.ndarray:
    return np.array([transform.TransformPoint(tuple(p)) for p in points])
