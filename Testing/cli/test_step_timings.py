"""Where the time goes: every case report's ``timings``, report.json's run timings and totals,
``register --verbose``'s step table, and the fixed scan read and analysed once per run and per
worker, not once per case."""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
import SimpleITK as sitk
from support.small_pairs import TINY_PAIR

from CTAffineRegisterLib import analyze_background, register_pair, run_cohort
from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort import case as case_module
from CTAffineRegisterLib.core.timing import CASE_STEPS, RUN_STEPS
from CTAffineRegisterLib.pair import register as register_module
from CTAffineRegisterLib.pair.register import registration_steps
from CTAffineRegisterLib.synthetic import make_pair

DOCS = Path(__file__).resolve().parents[2] / "docs"
# What every registered case does, whatever its options (a lone case in this process reads and
# analyses its moving scan ahead, beside the fixed scan's analysis: it waits for it instead).
ALWAYS = [
    "claim", "read_moving", "analyse_moving", "register", "resample", "pictures",
    "write_registered", "write_transform", "write_validmask", "write_qc", "write_qc_thumb",
]  # fmt: skip
LONE = ["claim", "wait_moving", *ALWAYS[3:]]


@pytest.fixture(scope="module")
def pair():
    return make_pair(seed=3, **TINY_PAIR)


@pytest.fixture
def files(tmp_path: Path, pair) -> dict:
    paths = {
        "fixed": tmp_path / "fixed.nii.gz",
        "moving": tmp_path / "m1.nii.gz",
        "moving2": tmp_path / "m2.nii.gz",
    }
    sitk.WriteImage(pair.fixed, str(paths["fixed"]))
    sitk.WriteImage(pair.moving, str(paths["moving"]))
    sitk.WriteImage(pair.moving, str(paths["moving2"]))
    return paths


def _check_steps(timings: dict, allowed, seconds: float) -> None:
    assert timings, "no timings"
    assert set(timings) <= set(allowed), sorted(set(timings) - set(allowed))
    assert all(isinstance(value, float) and value >= 0 for value in timings.values()), timings
    # each step lies inside the call: together never more than its wall time (+ rounding to 1 ms each)
    assert sum(timings.values()) <= seconds + 0.001 * len(timings)


def test_a_case_report_and_the_summary_say_where_the_time_went(files, tmp_path, capsys):
    out = tmp_path / "out"
    command = ["register", "--fixed", str(files["fixed"]), "--moving", str(files["moving"])]
    assert main(command + ["--out", str(out), "--jobs", "1", "--quiet", "--verbose"]) == 0
    report = json.loads((out / "m1_report.json").read_text())
    _check_steps(report["timings"], CASE_STEPS, report["seconds"])
    assert [step for step in report["timings"] if step in LONE] == LONE  # all, in the order they ran
    assert "read_moving" not in report["timings"]  # it ran before the case, beside analyse_fixed:
    assert set(report["read_ahead"]) == {"read_moving", "analyse_moving"}
    assert all(seconds > 0 for seconds in report["read_ahead"].values())
    assert report["timings"]["register"] > 0
    verdict_seconds = report["registration"]["verdict_seconds"]  # the verdict times itself
    assert 0 < verdict_seconds and report["timings"]["verdict"] == pytest.approx(verdict_seconds, abs=0.001)
    summary = json.loads((out / "report.json").read_text())
    run = summary["run"]
    _check_steps(run["timings"], RUN_STEPS, run["seconds"])
    assert list(run["timings"]) == ["read_fixed", "analyse_fixed", "plan", "cases"]
    assert run["timings"]["cases"] >= sum(report["timings"].values()) - 0.001 * len(report["timings"])
    assert run["case_timings"] == report["timings"]

    table = capsys.readouterr().out
    names = [line.split()[0] for line in table.splitlines()[2:]]
    for step in ["start-up", "read_fixed", "analyse_fixed", "cases", *LONE, "summary", "total", "wall"]:
        assert step in names, (step, table)
    lines = table.splitlines()
    below = lines[[line.split()[0] for line in lines].index("analyse_fixed") + 1 :][:2]
    assert [line.split()[:2] for line in below] == [["read_moving", "(beside"], ["analyse_moving", "(beside"]]
    total = float(re.search(r"^total\s+([\d.]+)", table, re.M).group(1))
    wall = float(re.search(r"^wall time\s+([\d.]+)", table, re.M).group(1))
    assert 0 < total <= wall + 0.001 * len(names)  # each step rounded to the millisecond


def test_without_verbose_there_is_no_step_table(files, tmp_path, capsys):
    command = ["register", "--fixed", str(files["fixed"]), "--moving", str(files["moving"])]
    assert main(command + ["--out", str(tmp_path / "o"), "--jobs", "1", "--quiet"]) == 0
    assert "read_moving" not in capsys.readouterr().out


def test_every_step_name_is_documented():
    page = (DOCS / "reference" / "outputs.md").read_text(encoding="utf-8")
    missing = [step for step in (*CASE_STEPS, *RUN_STEPS) if f"`{step}`" not in page]
    assert missing == []


def test_register_pair_times_the_analyses_it_makes_itself(pair):
    result = register_pair(pair.fixed, pair.moving)
    steps = result.report["timings"]
    _check_steps(steps, CASE_STEPS, result.report["seconds"])
    assert list(steps)[:3] == ["analyse_fixed", "analyse_moving", "register"] and "resample" in steps
    given = register_pair(pair.fixed, pair.moving, fixed_analysis=analyze_background(pair.fixed))
    assert "analyse_fixed" not in given.report["timings"]  # analysed once by the caller, not again


def test_registration_steps_take_the_refinement_and_verdict_out_of_register():
    assert registration_steps(2.0, 0.25, 0.5) == {"register": 1.25, "refine": 0.5, "verdict": 0.25}
    assert registration_steps(2.0) == {"register": 2.0}
    squeezed = registration_steps(2.0, 1.0, 3.0)
    assert squeezed["register"] == 0 and sum(squeezed.values()) == pytest.approx(2.0)


def _count_fixed_analyses(monkeypatch, fixed_size) -> list:
    """Patch every place that analyses a scan; record the calls that analysed the fixed scan."""
    calls = []
    original = analyze_background

    def counting(image, *args, **kwargs):
        if tuple(image.GetSize()) == tuple(fixed_size):
            calls.append(threading.get_ident())
        return original(image, *args, **kwargs)

    monkeypatch.setattr(case_module, "analyze_background", counting)
    monkeypatch.setattr(register_module, "analyze_background", counting)
    return calls


def test_the_fixed_scan_is_analysed_once_for_all_cases_of_a_run(files, tmp_path, monkeypatch, pair):
    calls = _count_fixed_analyses(monkeypatch, pair.fixed.GetSize())
    case_module._FIXED_CACHE.clear()
    moving = [str(files["moving"]), str(files["moving2"])]
    summary = run_cohort(str(files["fixed"]), moving, str(tmp_path / "o"), jobs=1)
    assert summary["counts"]["registered"] == 2
    assert len(calls) == 1
    assert all("analyse_fixed" not in case["timings"] for case in summary["cases"])
    for case in summary["cases"]:  # several cases read their own scans, in order; none is read ahead
        assert [step for step in case["timings"] if step in ALWAYS] == ALWAYS
        assert "read_ahead" not in case and "wait_moving" not in case["timings"]


def test_worker_processes_are_handed_the_analysed_fixed_scan(files, tmp_path, pair):
    """Two worker processes, two cases: neither reads nor analyses the fixed scan again."""
    moving = [str(files["moving"]), str(files["moving2"])]
    summary = run_cohort(str(files["fixed"]), moving, str(tmp_path / "o"), jobs=2)
    assert summary["run"]["backend"].startswith("2 local worker")
    assert summary["counts"]["registered"] == 2
    for case in summary["cases"]:
        assert {"read_fixed", "analyse_fixed"}.isdisjoint(case["timings"]), case["timings"]
        assert case["where"]["pid"] != summary["cases"][0]["where"]["pid"] or case is summary["cases"][0]


def test_a_worker_reads_and_analyses_the_fixed_scan_once_for_many_cases(files, monkeypatch, pair):
    """What a Dask worker does per case (``load_fixed``), from several threads at once: one read."""
    calls = _count_fixed_analyses(monkeypatch, pair.fixed.GetSize())
    case_module._FIXED_CACHE.clear()
    original_read = case_module.CaseOptions.read

    def slow_read(self, path):
        time.sleep(0.2)  # every thread is waiting for the first read before any has finished
        return original_read(self, path)

    monkeypatch.setattr(case_module.CaseOptions, "read", slow_read)
    loaded = []
    threads = [
        threading.Thread(target=lambda: loaded.append(case_module.load_fixed(str(files["fixed"]))))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for _ in range(3):
        loaded.append(case_module.load_fixed(str(files["fixed"])))
    assert len(calls) == 1
    assert all(scan is loaded[0] for scan in loaded)
    assert set(loaded[0].timings) == {"read_fixed", "analyse_fixed"}


def test_a_lone_case_runs_in_this_process_unless_workers_are_asked_for(files, tmp_path):
    """A worker's start-up (interpreter, imports, the fixed scan sent over) would be a fixed cost
    of every one-scan call; ``jobs`` given, or ``in_process=False``, still gets the pool."""
    alone = run_cohort(str(files["fixed"]), [str(files["moving"])], str(tmp_path / "a"))
    assert alone["run"]["backend"] == "in this process, one case at a time"
    assert alone["cases"][0]["where"]["pid"] == os.getpid()
    asked = run_cohort(str(files["fixed"]), [str(files["moving"])], str(tmp_path / "b"), in_process=False)
    assert asked["run"]["backend"] == "1 local worker process"
    assert asked["cases"][0]["where"]["pid"] != os.getpid()


def test_a_case_that_fails_to_register_still_shows_where_its_time_went(files, tmp_path):
    flat = sitk.Image([40, 40, 30], sitk.sitkInt16) + 40  # one value everywhere: nothing to align
    flat.SetSpacing((5.0, 5.0, 6.0))
    path = tmp_path / "flat.nii.gz"
    sitk.WriteImage(flat, str(path))
    summary = run_cohort(str(files["fixed"]), [str(path)], str(tmp_path / "o"), jobs=1)
    case = summary["cases"][0]
    assert case["status"] == "failed"
    _check_steps(case["timings"], CASE_STEPS, case["seconds"])
    assert "register" in case["timings"]
    assert "read_moving" in case["read_ahead"]  # a lone case: read beside the fixed scan's analysis
