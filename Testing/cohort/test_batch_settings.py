"""The batch API of version 0.1 (cohort/batch.py) still means what it meant: the four output paths of
a case, and every setting handed on to the cohort run (a script's ``quiet=True`` still silences the
progress). Fast: the cohort run itself is replaced by a recorder."""

from __future__ import annotations

import os

from CTAffineRegisterLib.cohort import batch
from CTAffineRegisterLib.cohort.batch import BatchSettings, output_paths, run_batch
from CTAffineRegisterLib.registration.options import RegistrationOptions


def test_a_case_has_four_outputs_in_the_output_folder():
    assert output_paths("/out", "p01") == {
        "registered": os.path.join("/out", "p01_registered.nii.gz"),
        "transform": os.path.join("/out", "p01_transform.tfm"),
        "validmask": os.path.join("/out", "p01_validmask.nii.gz"),
        "qc": os.path.join("/out", "p01_qc.png"),
    }
    assert output_paths("/out", "p02", "mha")["registered"] == os.path.join("/out", "p02_registered.mha")
    assert output_paths("/out", "p02", "mha")["validmask"] == os.path.join("/out", "p02_validmask.mha")


def test_the_defaults_are_the_command_lines():
    settings = BatchSettings("/out")
    assert (settings.transform, settings.fill, settings.interpolator) == ("affine", None, "linear")
    assert (settings.overwrite, settings.jobs, settings.quiet) == (False, None, False)
    assert (settings.output_format, settings.options) == ("nii.gz", None)
    assert "options" not in repr(settings)


def test_every_setting_reaches_the_cohort_run(monkeypatch):
    calls = []

    def recorded(*args, **kwargs):
        calls.append((args, kwargs))
        return {"cases": []}

    monkeypatch.setattr(batch, "run_cohort", recorded)
    options = RegistrationOptions()
    settings = BatchSettings("/out", "rigid", -1000.0, "nearest", True, 3, True, "nrrd", options)
    assert run_batch("/f.nii", ["/m.nii"], settings) == {"cases": []}
    assert calls == [
        (
            ("/f.nii", ["/m.nii"], "/out"),
            {
                "jobs": 3,
                "transform": "rigid",
                "fill": -1000.0,
                "interpolator": "nearest",
                "output_format": "nrrd",
                "overwrite": True,
                "options": options,
                "progress": "quiet",
            },
        )
    ]
    run_batch("/f.nii", ["/m.nii"], BatchSettings("/out"))
    assert calls[-1][1]["progress"] == "auto" and calls[-1][1]["overwrite"] is False
