"""The library's exception types (errors.py) as a Python caller uses them: the message names the file
and says what is wrong, and ``path`` (and ``reason``) give the parts without parsing the message."""

from __future__ import annotations

from pathlib import Path

from CTAffineRegisterLib.errors import InputError, LabelError, OutputExistsError, OutputWriteError


def test_each_file_error_names_its_file_in_the_message_and_in_path():
    where = Path("/data/out/case.nii.gz")
    refused = InputError(where, "file is empty")
    assert (str(refused), refused.path, refused.reason) == (
        f"{where}: file is empty",
        str(where),
        "file is empty",
    )
    exists = OutputExistsError(where)
    assert str(exists) == f"{where}: already exists (use --overwrite to replace it)"
    assert exists.path == str(where)
    failed = OutputWriteError(str(where), "No space left on device")
    assert str(failed) == f"{where}: cannot write (No space left on device)"
    assert failed.path == str(where)


def test_a_label_error_is_a_value_error_with_its_reason():
    error = LabelError("labels must be whole numbers")
    assert isinstance(error, ValueError)
    assert (str(error), error.reason) == ("labels must be whole numbers", "labels must be whole numbers")
