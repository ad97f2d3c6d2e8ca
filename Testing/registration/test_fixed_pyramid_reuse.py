"""A cohort's fixed scan is prepared once per thread: the next moving scan reuses its pyramid and gets
exactly the result a fresh preparation gives; another analysis, or another thread, builds its own."""

from __future__ import annotations

import gc
import threading

import pytest
from support.small_pairs import SMALL_PATIENT

from CTAffineRegisterLib import synthetic
from CTAffineRegisterLib.padding.analysis import analyze_background
from CTAffineRegisterLib.registration import RegistrationOptions, preparation, register_images

FAST = RegistrationOptions(transform="rigid", polish_rounds=1, refine_to_optimum=False)


@pytest.fixture(scope="module")
def scans():
    first = synthetic.make_pair(31, **SMALL_PATIENT)
    second = synthetic.make_pair(32, **SMALL_PATIENT)
    return first.fixed, analyze_background(first.fixed), first.moving, second.moving


@pytest.fixture
def builds(monkeypatch):
    calls = []
    original = preparation._build_fixed_pyramid

    def counting(fixed, analysis, options):
        calls.append(threading.get_ident())
        return original(fixed, analysis, options)

    monkeypatch.setattr(preparation, "_build_fixed_pyramid", counting)
    return calls


def _register(fixed, analysis, moving, options=FAST):
    return register_images(fixed, moving, analysis, analyze_background(moving), options)


def test_the_next_moving_scan_reuses_the_fixed_pyramid_with_the_same_result(scans, builds):
    fixed, analysis, moving, other = scans
    first = _register(fixed, analysis, moving)
    second = _register(fixed, analysis, other)
    assert len(builds) == 1  # the fixed scan was prepared for the first moving scan only
    fresh = _register(fixed, analyze_background(fixed), other)  # another analysis: prepared anew
    assert len(builds) == 2
    assert second.transform.GetParameters() == fresh.transform.GetParameters()
    assert first.transform.GetParameters() != second.transform.GetParameters()


def test_other_levels_or_another_thread_prepare_their_own(scans, builds):
    fixed, analysis, moving, _ = scans
    _register(fixed, analysis, moving)
    _register(fixed, analysis, moving, RegistrationOptions(transform="rigid", level_count=2))
    assert len(builds) == 2
    worker = threading.Thread(target=_register, args=(fixed, analysis, moving))
    worker.start()
    worker.join()
    assert len(builds) == 3 and builds[-1] != builds[0]


def test_a_kept_pyramid_goes_with_its_analysis(scans):
    fixed, _, moving, _ = scans
    analysis = analyze_background(fixed)
    _register(fixed, analysis, moving)
    assert any(key[0] == id(analysis) for key in preparation._FIXED_PYRAMIDS)
    key = id(analysis)
    del analysis
    gc.collect()
    assert not any(kept[0] == key for kept in preparation._FIXED_PYRAMIDS)


def test_a_pyramid_warmed_ahead_is_the_one_the_registration_uses(scans, builds):
    fixed, analysis, moving, _ = scans
    assert preparation.warm_fixed_pyramid(fixed, analysis, FAST) is True
    assert len(builds) == 1
    warmed = _register(fixed, analysis, moving)
    assert len(builds) == 1  # built ahead (while a lone case's moving scan is still being read)
    fresh = _register(fixed, analyze_background(fixed), moving)
    assert warmed.transform.GetParameters() == fresh.transform.GetParameters()


def test_warming_a_scan_that_cannot_be_registered_leaves_the_error_to_the_registration(scans):
    fixed, analysis, moving, _ = scans
    flat = fixed * 0 - 1000  # air only: no body to register
    flat.CopyInformation(fixed)
    flat_analysis = analyze_background(flat)
    assert preparation.warm_fixed_pyramid(flat, flat_analysis, FAST) is False
    with pytest.raises(preparation.RegistrationError):
        register_images(flat, moving, flat_analysis, analyze_background(moving), FAST)
