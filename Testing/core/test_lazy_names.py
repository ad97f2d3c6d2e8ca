"""A package's public names given on first use (core/lazy.py): the right object under each name, kept
once loaded, listed by ``dir()``, and an unknown name an ``AttributeError`` naming the package. The
library's own packages call ``lazy_names`` once at import, so this calls it on a namespace of its own.
"""

from __future__ import annotations

import pytest

from CTAffineRegisterLib.core.lazy import lazy_names
from CTAffineRegisterLib.errors import InputError
from CTAffineRegisterLib.io.tfm_text import itk_text_problem


def test_names_are_loaded_from_their_modules_relative_to_the_package_and_kept():
    namespace = {"__name__": "CTAffineRegisterLib.io", "already": 1}
    names = {"InputError": "..errors", "itk_text_problem": ".tfm_text"}
    getattr_, dir_ = lazy_names("CTAffineRegisterLib.io", names, namespace)
    assert getattr_("itk_text_problem") is itk_text_problem
    assert namespace["itk_text_problem"] is itk_text_problem
    assert "InputError" not in namespace  # only what was asked for is loaded
    assert getattr_("InputError") is InputError
    assert namespace["InputError"] is InputError
    assert dir_() == ["InputError", "__name__", "already", "itk_text_problem"]


def test_dir_lists_names_not_loaded_yet():
    namespace = {"b": 2}
    _, dir_ = lazy_names("CTAffineRegisterLib", {"a": ".errors", "c": ".errors"}, namespace)
    assert dir_() == ["a", "b", "c"]


def test_an_unknown_name_is_an_attribute_error_naming_the_package():
    getattr_, _ = lazy_names("CTAffineRegisterLib.io", {"InputError": "..errors"}, {})
    with pytest.raises(AttributeError, match=r"^module 'CTAffineRegisterLib.io' has no attribute 'nothing'$"):
        getattr_("nothing")
    # hasattr and getattr with a default rely on exactly this exception
    assert getattr(type("M", (), {"__getattr__": lambda self, name: getattr_(name)})(), "x", None) is None
