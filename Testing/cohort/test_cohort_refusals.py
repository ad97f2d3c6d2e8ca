"""`register` refusals before any work: one `error:` line, exit 2, nothing written.

A fixed scan too thin to place (a slab under 15 mm) and a `--scheduler` that is no Dask scheduler
address used to get through the checks: the first failed every case naming the *moving* scan
(exit 1), the second ended in a traceback from inside Dask (exit 1).
"""

from __future__ import annotations

import pytest
import SimpleITK as sitk
from support.cohort_helpers import dask_available, require_in_ci, write_fixed, write_moving

from CTAffineRegisterLib.cli.commands import main
from CTAffineRegisterLib.cohort import run_cohort


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("refusals")
    fixed = write_fixed(folder / "fixed.nii.gz")
    moving = [write_moving(folder / f"m{index}.nii.gz", index + 1) for index in range(2)]
    return fixed, moving


def _register(fixed, moving, out, *extra) -> list[str]:
    return ["register", "--fixed", str(fixed), "--moving", *map(str, moving), "--out", str(out), *extra]


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_a_fixed_slab_thinner_than_15_mm_is_refused_before_any_work(inputs, tmp_path, capsys):
    fixed, moving = inputs
    image = sitk.ReadImage(str(fixed))
    middle = image.GetSize()[2] // 2
    slab = image[:, :, middle : middle + 2]  # two slices...
    slab.SetSpacing(image.GetSpacing()[:2] + (5.0,))  # ...10 mm in all
    thin = tmp_path / "slab.nii.gz"
    sitk.WriteImage(slab, str(thin))
    out = tmp_path / "out"
    assert main(_register(thin, moving, out, "--jobs", "1")) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: {thin}: is a slab 10 mm thick (2 voxels along axis 2)")
    assert "15 mm" in line and str(moving[0]) not in line
    assert not out.exists() or not any(out.iterdir())  # no case started


@pytest.mark.parametrize(
    "address", ["http://x", "tcp://", "foo", "inproc://x", "tcp://host:port", "tcp://h:0"]
)
def test_a_malformed_scheduler_is_one_error_line(inputs, tmp_path, capsys, address):
    fixed, moving = inputs
    out = tmp_path / "out"
    assert main(_register(fixed, moving, out, "--scheduler", address)) == 2
    line = _one_error(capsys)
    assert line.startswith(f"error: --scheduler {address!r}: ")
    assert not out.exists()  # refused before any work
    with pytest.raises(ValueError, match="scheduler"):
        run_cohort(fixed, moving, out, scheduler=address)
    assert not out.exists()


def test_a_scheduler_dask_refuses_to_reach_is_one_error_line(inputs, tmp_path, capsys):
    """tls:// without TLS settings: Dask's own TypeError becomes the usual "cannot reach" line."""
    require_in_ci(dask_available(), 'Dask (the "dask" extra)')
    fixed, moving = inputs
    out = tmp_path / "out"
    assert main(_register(fixed, moving, out, "--scheduler", "tls://127.0.0.1:1", "--quiet")) == 2
    line = _one_error(capsys)
    assert line.startswith("error: cannot reach the Dask scheduler at tls://127.0.0.1:1 (")
