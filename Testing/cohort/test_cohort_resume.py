"""Resuming sees an input edited in place, even with its modification time put back, and says what
changed. (Size and time alone kept a stale finished case when `touch -r` restored the time, and a
refusal after a plain `touch` printed the same path and size on both sides.)"""

from __future__ import annotations

import json
import os

import pytest
from support.cohort_helpers import case_report, write_fixed, write_moving

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort.case import SAMPLE_BYTES, input_fingerprint


@pytest.fixture
def finished(tmp_path):
    """A finished one-case cohort: (fixed, moving, out)."""
    fixed = write_fixed(tmp_path / "fixed.nii.gz")
    moving = write_moving(tmp_path / "m0.nii.gz", 1)
    out = tmp_path / "out"
    assert main(_arguments(fixed, moving, out, "--quiet")) == 0
    return fixed, moving, out


def _arguments(fixed, moving, out, *extra) -> list[str]:
    return [
        "register",
        "--fixed",
        str(fixed),
        "--moving",
        str(moving),
        "--out",
        str(out),
        "--jobs",
        "1",
        *extra,
    ]


def _edit_keeping_size_and_time(path) -> None:
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[-8] ^= 0xFF  # in the gzip trailer: the same size, other bytes
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `touch -r` would put it back


def test_a_same_size_edit_with_its_time_restored_is_seen(finished, tmp_path, capsys):
    fixed, moving, out = finished
    capsys.readouterr()
    assert main(_arguments(fixed, moving, out, "--quiet")) == 0  # unchanged: kept
    assert "1 finished by an earlier run" in capsys.readouterr().out
    before = moving.stat()
    _edit_keeping_size_and_time(moving)
    assert (moving.stat().st_size, moving.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert main(_arguments(fixed, moving, out)) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(
        f"error: {out / 'm0_report.json'}: finished from another moving input ({moving}: "
    )
    assert "its content changed (same size and modification time)" in err[0]


def test_a_refusal_after_touch_names_the_modification_time(finished, tmp_path, capsys):
    fixed, moving, out = finished
    capsys.readouterr()
    stat = moving.stat()
    os.utime(moving, ns=(stat.st_atime_ns, stat.st_mtime_ns + 3 * 10**9))  # `touch`: only the time
    assert main(_arguments(fixed, moving, out)) == 2
    line = capsys.readouterr().err.strip()
    assert f"another moving input ({moving}: modified " in line and ", now " in line
    assert "bytes" not in line and "content" not in line  # only what changed


def test_reports_from_before_content_samples_still_resume(finished, tmp_path, capsys):
    """An upgrade must not turn a finished cohort into conflicts: a recorded fingerprint without a
    ``sample`` is compared on what it has."""
    fixed, moving, out = finished
    capsys.readouterr()
    report = case_report(out, "m0")
    for role in ("moving", "fixed"):
        report["inputs"][role].pop("sample")
    (out / "m0_report.json").write_text(json.dumps(report, indent=2))
    assert main(_arguments(fixed, moving, out, "--quiet")) == 0
    assert "1 finished by an earlier run" in capsys.readouterr().out


def test_the_sample_covers_both_ends_of_a_large_file(tmp_path):
    path = tmp_path / "big.raw"
    path.write_bytes(bytes(3 * SAMPLE_BYTES))
    first = input_fingerprint(str(path))
    for offset in (10, 3 * SAMPLE_BYTES - 10):
        with open(path, "r+b") as handle:
            handle.seek(offset)
            handle.write(b"\x01")
        now = input_fingerprint(str(path))
        assert now["sample"] != first["sample"] and now["bytes"] == first["bytes"]
        first = now
