"""Thread counts: results never depend on ITK's process-wide default, and the library never changes it.

In Slicer, SimpleITK shares ITK with every other module, so the library sets threads per object
(each registration method and its metric) and leaves ``SetGlobalDefaultNumberOfThreads`` alone.
"""

from __future__ import annotations

import hashlib
import threading

import SimpleITK as sitk
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.core.pyramid import Level
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.pair import register as pipeline
from CTAffineRegisterLib.quality import picture as qc
from CTAffineRegisterLib.registration.engine import RegistrationOptions, _method


class GlobalThreads:
    """Set ITK's global default for a test and put the previous value back afterwards."""

    def __init__(self, count: int):
        self.count = count

    def __enter__(self):
        self.previous = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(self.count)
        return self

    def __exit__(self, *exc):
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(self.previous)


def _digest(image: sitk.Image) -> str:
    return hashlib.sha1(sitk.GetArrayViewFromImage(image).tobytes()).hexdigest()


def _everything_the_library_computes(pair) -> dict:
    """Background analysis, registration, resampling, quality and the QC picture of one pair."""
    fixed_analysis, moving_analysis = analyze_background(pair.fixed), analyze_background(pair.moving)
    result = pipeline.register_pair(
        pair.fixed, pair.moving, fixed_analysis=fixed_analysis, moving_analysis=moving_analysis
    )
    return {
        "analyses": [
            (_digest(analysis.valid_mask), _digest(analysis.body_mask), str(analysis.to_dict()))
            for analysis in (fixed_analysis, moving_analysis)
        ],
        "parameters": result.transform.GetParameters(),
        "fixed_parameters": result.transform.GetFixedParameters(),
        "iterations": [stage["iterations"] for stage in result.report["registration"]["stages"]],
        "registered": _digest(result.registered),
        "valid_mask": _digest(result.valid_mask),
        "quality": str(result.report["quality"]),
        "qc_picture": _digest(qc.qc_picture(pair.fixed, result.registered)),
    }


def test_results_are_bit_identical_whatever_the_global_thread_count_which_stays_untouched():
    """The same pair at a global default of 1 and of 3 threads; during the second run, what any other
    ITK user in the process sees of the global default is watched: it never changes."""
    pair = synthetic.make_pair(1, **SMALL_PATIENT)
    with GlobalThreads(1):
        single = _everything_the_library_computes(pair)
    results, seen = {}, set()
    with GlobalThreads(3):  # more threads than this machine's cores: work is still split 3 ways
        worker = threading.Thread(
            target=lambda: results.update(several=_everything_the_library_computes(pair))
        )
        worker.start()
        while worker.is_alive():
            seen.add(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
            worker.join(0.002)
        seen.add(sitk.ProcessObject.GetGlobalDefaultNumberOfThreads())
    assert seen == {3}
    assert results["several"] == single


def test_registration_method_and_metric_get_their_own_thread_count():
    pair = synthetic.make_pair(1, **SMALL_PATIENT)
    analysis = analyze_background(pair.fixed)
    level = Level(sitk.Cast(pair.fixed, sitk.sitkFloat32), analysis.valid_mask, (1, 1, 1))
    with GlobalThreads(3):
        method = _method(level, level, RegistrationOptions())
        # work units are what SimpleITK passes on to the metric and the optimizer
        assert (method.GetNumberOfThreads(), method.GetNumberOfWorkUnits()) == (1, 1)
        free = _method(level, level, RegistrationOptions(number_of_threads=None))
        assert (free.GetNumberOfThreads(), free.GetNumberOfWorkUnits()) == (3, 0)  # the defaults
