"""What ``read_image`` says when it refuses a file: the reason after the file's name."""

from __future__ import annotations

from pathlib import Path

import pytest

from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.images import read_image


def refusal(path: Path) -> str:
    """The reason ``read_image`` refuses ``path`` with (the message must start with the path)."""
    with pytest.raises(InputError) as caught:
        read_image(str(path))
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    return message[len(f"{path}: ") :]
