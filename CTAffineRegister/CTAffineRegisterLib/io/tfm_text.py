"""Checking an ITK text transform file (``.tfm``/``.txt``) before ITK parses it.

Why: ITK reads a ``Parameters:`` line number by number and stops without a word at the first word that
is not a number; ``NaN`` and ``Inf`` (which SimpleITK itself writes for a NaN parameter) are such
words, and so is a typo. It then hands the shorter list to the transform, and some transforms
(``Euler3DTransform`` among them, in a composite or alone) take as many values as they expect without
checking: Python dies with "corrupted size vs. prev_size", "free(): invalid pointer" or a
segmentation fault, with no error to catch. So every value, and the count of the linear transforms
that do not check it, is checked here first, and such a file is refused by name.

Pure module: the standard library only.
"""

from __future__ import annotations

import math
import re
from typing import Optional

_HEADER = "#Insight Transform File"
# ``AffineTransform_double_3_3``: the name, and the dimensions (ANTs writes ``_float_``).
_KIND = re.compile(r"^(\w+?)_(?:double|float)_(\d+_\d+)$")
# Parameters of the 3D linear transforms ITK takes too few of without an error (it crashes, or reads
# zeros); AffineTransform and TranslationTransform check their count and ITK says so itself.
_PARAMETER_COUNTS = {
    "Euler3DTransform": 6,
    "VersorRigid3DTransform": 6,
    "Similarity3DTransform": 7,
    "ScaleVersor3DTransform": 9,
    "ScaleSkewVersor3DTransform": 15,
    "ComposeScaleSkewVersor3DTransform": 12,
    "ScaleTransform": 3,
    "VersorTransform": 3,
}


def itk_text_problem(path: str) -> Optional[str]:
    """Why ITK must not be given this transform file, or None (also for files not in ITK's text format).

    Args:
        path: a transform file; only files starting with ``#Insight Transform File`` are looked into.

    Returns:
        The reason in words, naming the transform (its ``#Transform`` number and type) and the value,
        or None when the file may be passed to ITK.

    Raises:
        OSError: the file cannot be read.
    """
    with open(path, "rb") as handle:
        if not handle.read(len(_HEADER)).decode("latin-1").startswith(_HEADER):
            return None
    with open(path, encoding="latin-1") as handle:
        return _lines_problem(handle)


def _lines_problem(lines) -> Optional[str]:
    number, kind = "0", "?"
    for line in lines:
        line = line.strip()
        if line.startswith("#Transform"):
            number = line[len("#Transform") :].strip()
        elif line.startswith("Transform:"):
            kind = line[len("Transform:") :].strip()
        elif line.startswith("Parameters:") or line.startswith("FixedParameters:"):
            label, _, values = line.partition(":")
            problem = _values_problem(label, values.split(), kind)
            if problem is not None:
                return f"transform {number} ({kind}): {problem}"
    return None


def _values_problem(label: str, words: list[str], kind: str) -> Optional[str]:
    for index, word in enumerate(words, start=1):
        try:
            value = float(word)
        except ValueError:
            return f"{label} value {index} is '{word[:40]}', not a number"
        if not math.isfinite(value):
            return f"{label} value {index} is {word[:40]}: NaN or Inf maps no point to a place"
    match = _KIND.match(kind)
    name = match.group(1) if match else kind
    expected = _PARAMETER_COUNTS.get(name) if match and match.group(2) == "3_3" else None
    if label == "Parameters" and expected is not None and len(words) != expected:
        return f"has {len(words)} Parameters; a 3D {name} has {expected}"
    return None
