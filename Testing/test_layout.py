"""The package's layout rules: one public face, every exception in ``errors``, the 0.1 module paths
still importable (with a DeprecationWarning, giving the very same modules), folder names without
repeated prefixes, no import hidden in a function to dodge a loop, and the import-linter layers.

Plain Python: the source is parsed, and only the pure modules are imported.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import importlib
import inspect
import os
import shutil
import subprocess
import sys
import textwrap
import warnings
from collections import Counter
from pathlib import Path

import pytest

import CTAffineRegisterLib
from CTAffineRegisterLib import _moved, errors

ROOT = Path(__file__).resolve().parents[1]
LIB_DIR = ROOT / "CTAffineRegister" / "CTAffineRegisterLib"
# What the README and the issue teach as the public face.
TAUGHT = {
    "register_pair", "check_transform", "apply_files", "run_cohort", "exit_status", "read_image",
    "write_image", "analyze_background", "carry_labels", "read_label_map", "resample_labels",
    "resample_to_fixed", "inputs_from_root", "inputs_from_list_file", "make_pair", "RegistrationOptions",
    "RegistrationResult", "register_volume_nodes", "__version__",
}  # fmt: skip
# Imports of the package's own modules inside a function, and why each is not a loop being dodged.
FUNCTION_LEVEL_IMPORTS = {
    # a script: the package becomes importable only once _make_package_importable has run
    ("cli/slicer_batch.py", "CTAffineRegisterLib.cli.commands"),
    ("cli/slicer_batch.py", "CTAffineRegisterLib.cli.slicer_batch"),
    ("cli/slicer_batch.py", "CTAffineRegisterLib.pair.register"),
    # the batch always registers: a broken installation is found before the run (one error line)
    ("cli/slicer_batch.py", "CTAffineRegisterLib.cohort.run"),
    # each subcommand imports what it runs when it runs: --help and --version load no SimpleITK
    ("cli/commands.py", "CTAffineRegisterLib.cli.demo"),
    ("cli/commands.py", "CTAffineRegisterLib.cohort.dask_backend"),
    ("cli/commands.py", "CTAffineRegisterLib.cohort.inputs"),
    ("cli/commands.py", "CTAffineRegisterLib.cohort.run"),
    ("cli/commands.py", "CTAffineRegisterLib.io.images"),
    ("cli/commands.py", "CTAffineRegisterLib.padding.analysis"),
    ("cli/commands.py", "CTAffineRegisterLib.pair.apply"),
    ("cli/commands.py", "CTAffineRegisterLib.pair.check"),
    ("cli/commands.py", "CTAffineRegisterLib.reference.report"),
    ("cli/reference_command.py", "CTAffineRegisterLib.cohort.inputs"),
    ("cli/reference_command.py", "CTAffineRegisterLib.reference.run"),
}
ENGINE = "CTAffineRegisterLib.registration.engine"
# What importing the package itself loads: the 0.1 paths' finder, the version, the lazy names.
LIGHT = ["_moved", "_version", "core", "core.lazy"]
# Needs Slicer's MRML (the slicer-core wheel, or Slicer itself).
NEEDS_SLICER = {"mrml_bridge", "mrml_segmentations"}


def _lib_files() -> list[Path]:
    return sorted(path for path in LIB_DIR.rglob("*.py") if "__pycache__" not in path.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(LIB_DIR).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["CTAffineRegisterLib", *parts])


# ---------------------------------------------------------------------------------------------
# The public face


def test_the_root_exports_what_the_readme_teaches_and_every_exception():
    exported = set(CTAffineRegisterLib.__all__)
    exception_names = {name for name, value in vars(errors).items() if isinstance(value, type)}
    exception_names = {name for name in exception_names if issubclass(getattr(errors, name), Exception)}
    assert TAUGHT <= exported, sorted(TAUGHT - exported)
    assert exception_names <= exported, sorted(exception_names - exported)
    assert len(CTAffineRegisterLib.__all__) == len(exported)
    for name in exported - {"register_volume_nodes"}:
        assert getattr(CTAffineRegisterLib, name) is not None, name
    assert CTAffineRegisterLib.register_pair.__module__ == "CTAffineRegisterLib.pair.register"
    assert CTAffineRegisterLib.InputError is errors.InputError


def test_register_volume_nodes_stays_lazy():
    """Importing the package must not import the MRML side (it needs Slicer)."""
    code = "import sys, CTAffineRegisterLib; print(any('.mrml.' in name for name in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_environment())
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def _fresh_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env={**_environment(), "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_package_loads_none_of_the_library():
    """Its public names load on first use: ``import CTAffineRegisterLib`` (and so every command's
    start-up) pays for no SimpleITK, numpy or subpackage it does not use."""
    code = (
        "import sys, CTAffineRegisterLib\n"
        "print(sorted(name for name in sys.modules if name.startswith(('SimpleITK', 'numpy', 'CTAff'))))"
    )
    loaded = _fresh_python(code)
    assert loaded == str(sorted(["CTAffineRegisterLib", *(f"CTAffineRegisterLib.{name}" for name in LIGHT)]))


def test_every_public_name_imports_from_a_fresh_interpreter_and_is_listed_by_dir():
    code = (
        "import CTAffineRegisterLib as package\n"
        "names = [name for name in package.__all__ if name != 'register_volume_nodes']\n"
        "before = set(dir(package))\n"
        "exec('from CTAffineRegisterLib import ' + ', '.join(names))\n"
        "print(sorted(set(package.__all__) - before), [name for name in names if eval(name) is None],"
        " all(vars(package)[name] is eval(name) for name in names))"
    )
    assert _fresh_python(code) == "[] [] True"  # listed before loading; each loaded, then kept


def test_a_subpackage_with_lazy_names_still_lists_and_gives_them():
    from CTAffineRegisterLib import cohort, reference, registration

    for package in (cohort, reference, registration):
        assert set(package.__all__) <= set(dir(package))
        for name in package.__all__:
            assert getattr(package, name) is not None, (package.__name__, name)
    with pytest.raises(AttributeError, match="no attribute 'run_cohorts'"):
        _ = cohort.run_cohorts


@pytest.mark.parametrize(
    ("argv", "absent"),
    [
        (["--help"], ["SimpleITK", "numpy"]),
        (["register", "--help"], ["SimpleITK", "numpy"]),
        (["reference", "--help"], ["SimpleITK", "numpy"]),
        (["--version"], ["SimpleITK"]),
        (["check", "--fixed", "f.nii", "--moving", "m.nii", "--transform", "none.tfm"], [ENGINE]),
    ],
)
def test_a_command_imports_only_what_it_needs(argv, absent):
    code = (
        "import sys\n"
        "from CTAffineRegisterLib.cli import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        f"print([name for name in {absent!r} if name in sys.modules])"
    )
    assert _fresh_python(code).splitlines()[-1] == "[]"


def test_every_exception_type_is_defined_in_errors():
    """An exception class (a class whose base is an exception) anywhere else is a second place."""
    builtin_exceptions = {
        name
        for name, value in vars(builtins).items()
        if isinstance(value, type) and issubclass(value, BaseException)
    }
    exception_bases = builtin_exceptions | {
        name for name, value in vars(errors).items() if isinstance(value, type)
    }
    elsewhere = []
    for path in _lib_files():
        if path.name == "errors.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                bases = {ast.unparse(base).rsplit(".", 1)[-1] for base in node.bases}
                if bases & exception_bases:
                    elsewhere.append(f"{path.relative_to(LIB_DIR)}: {node.name}")
    assert elsewhere == []


# ---------------------------------------------------------------------------------------------
# The 0.1 module paths


def _forget(old: str) -> None:
    sys.modules.pop(f"CTAffineRegisterLib.{old}", None)
    if old in vars(CTAffineRegisterLib) and old not in ("cli", "cohort", "registration"):
        delattr(CTAffineRegisterLib, old)


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_module_path_warns_and_gives_the_module_at_its_new_path(old):
    if old in NEEDS_SLICER:
        pytest.importorskip("slicer", reason="the MRML modules need the slicer-core wheel")
    new = _moved.new_name(old)
    current = importlib.import_module(new)
    _forget(old)
    with pytest.warns(DeprecationWarning, match=rf"CTAffineRegisterLib\.{old} moved to {new}"):
        aliased = importlib.import_module(f"CTAffineRegisterLib.{old}")
    assert aliased is current
    assert current.__spec__.name == new  # the alias does not take over the module's own spec


def test_old_from_imports_give_the_same_objects():
    _forget("pipeline")
    _forget("imageio")
    with pytest.warns(DeprecationWarning, match="pair.register") as caught:
        from CTAffineRegisterLib.pipeline import register_pair
    assert caught[0].filename == __file__  # the warning points at the import that needs changing
    with pytest.warns(DeprecationWarning, match="io.images"):
        from CTAffineRegisterLib.imageio import InputError, read_image
    assert register_pair is CTAffineRegisterLib.register_pair
    assert read_image is CTAffineRegisterLib.read_image
    assert InputError is errors.InputError


def test_an_old_module_as_an_attribute_of_the_package_warns():
    _forget("background")
    with pytest.warns(DeprecationWarning, match="padding.analysis"):
        module = CTAffineRegisterLib.background
    assert module.analyze_background is CTAffineRegisterLib.analyze_background


def test_old_paths_that_are_packages_now_still_offer_what_they_taught():
    """``cli``, ``cohort`` and ``registration`` were modules: the packages re-export their names."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        from CTAffineRegisterLib.cli import main
        from CTAffineRegisterLib.cohort import exit_status, run_cohort
        from CTAffineRegisterLib.registration import RegistrationOptions, register_images
    assert main.__module__ == "CTAffineRegisterLib.cli.commands"
    assert run_cohort is CTAffineRegisterLib.run_cohort and exit_status is CTAffineRegisterLib.exit_status
    assert RegistrationOptions is CTAffineRegisterLib.RegistrationOptions
    assert register_images is CTAffineRegisterLib.register_images


# Every public name the 0.1 modules that are packages now defined (read from commit f14f052).
OLD_PACKAGE_NAMES = {
    "cli": ["main", "add_input_options"],
    "cohort": ["EXIT_BY_SIGNAL", "run_cohort", "exit_status"],
    "registration": [
        "TRANSFORM_TYPES", "GUARD_TOLERANCE", "MIN_OVERLAP", "RegistrationError", "RegistrationCancelled",
        "RegistrationOptions", "ProgressEvent", "StageInfo", "RegistrationResult", "ProgressCallback",
        "CancelCheck", "register_images", "build_pyramids",
    ],
}  # fmt: skip


@pytest.mark.parametrize("package", sorted(OLD_PACKAGE_NAMES))
def test_a_0_1_module_that_is_a_package_now_still_has_every_name_it_defined(package):
    module = importlib.import_module(f"CTAffineRegisterLib.{package}")
    missing = [name for name in OLD_PACKAGE_NAMES[package] if not hasattr(module, name)]
    assert missing == []


def test_an_unknown_name_is_still_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'pipelines'"):
        _ = CTAffineRegisterLib.pipelines
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("CTAffineRegisterLib.pipelines")


def test_every_moved_module_exists_at_its_new_path():
    for old, new in _moved.MOVED.items():
        assert (LIB_DIR / (new.replace(".", "/") + ".py")).is_file(), (old, new)
        assert not (LIB_DIR / f"{old}.py").exists(), f"{old}.py is back in the flat folder"


# ---------------------------------------------------------------------------------------------
# Layout rules


def test_no_module_name_prefix_repeats_within_a_folder():
    """``cohort_*`` ×9 stood in for a folder: a prefix shared by two files of one folder is one again."""
    folders = {path.parent for path in _lib_files()}
    for folder in folders:
        stems = [path.stem for path in folder.glob("*.py") if not path.stem.startswith("_")]
        prefixes = Counter(stem.split("_")[0] for stem in stems)
        repeated = sorted(prefix for prefix, count in prefixes.items() if count > 1)
        assert repeated == [], f"{folder.relative_to(LIB_DIR.parent)}: {repeated}"


def test_no_package_import_is_hidden_inside_a_function():
    """Imports inside functions were how the ``api_checks`` loop was dodged; only the listed ones stay."""
    found = set()
    for path in _lib_files():
        package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom):
                    if node.level:
                        base = package.split(".")
                        base = base[: len(base) - node.level + 1]
                        module = ".".join(base + ([node.module] if node.module else []))
                    else:
                        module = node.module or ""
                    if module.startswith("CTAffineRegisterLib"):
                        found.add((path.relative_to(LIB_DIR).as_posix(), module))
                elif isinstance(node, ast.Import):
                    for alias in node.names:
                        if alias.name.startswith("CTAffineRegisterLib"):
                            found.add((path.relative_to(LIB_DIR).as_posix(), alias.name))
    assert found == FUNCTION_LEVEL_IMPORTS


def test_no_module_imports_the_package_root():
    """The root imports everything (the public face): a module importing it would close a loop."""
    offenders = []
    for path in _lib_files():
        if path.name == "__init__.py" and path.parent == LIB_DIR:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            relative_root = isinstance(node, ast.ImportFrom) and node.level and node.module is None
            if relative_root and node.level == len(path.relative_to(LIB_DIR).parts):
                offenders.append(str(path.relative_to(LIB_DIR)))
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "CTAffineRegisterLib":
                if path.name != "slicer_batch.py":
                    offenders.append(str(path.relative_to(LIB_DIR)))
    assert offenders == []


# ---------------------------------------------------------------------------------------------
# The import-linter contracts (pyproject.toml), as .ci/run checks them


def _environment(extra_path: str = "") -> dict:
    environment = dict(os.environ)
    paths = [extra_path or str(LIB_DIR.parent), environment.get("PYTHONPATH", "")]
    environment["PYTHONPATH"] = os.pathsep.join(path for path in paths if path)
    return environment


def _lint_imports(cwd: Path, package_parent: Path) -> subprocess.CompletedProcess:
    executable = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    if not Path(executable).exists():
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    return subprocess.run(
        [executable, "--no-cache"],
        cwd=str(cwd),
        capture_output=True,
        encoding="utf-8",
        errors="replace",
        env={**_environment(str(package_parent)), "PYTHONIOENCODING": "utf-8"},
        timeout=300,
    )


def test_the_import_contracts_hold():
    done = _lint_imports(ROOT, LIB_DIR.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("core/affine.py", "from ..cli import commands  # noqa", "Layers"),
        ("io/images.py", "from ..pair.register import register_pair  # noqa", "Layers"),
        ("pair/check.py", "import slicer  # noqa", "Only mrml imports slicer and vtk"),
        ("resample/scans.py", "import qt  # noqa", "The library never imports Qt"),
        ("pair/check.py", "from ..registration import engine  # noqa", "check judges a transform"),
        ("cli/demo.py", "from ..cohort import batch  # noqa", "Nothing in the library builds on the 0.1"),
    ],
)
def test_an_upward_import_or_a_gui_import_breaks_a_contract(tmp_path, module, line, contract):
    """The contracts are not vacuous: one added upward import (or Slicer/Qt import) breaks them."""
    copy = tmp_path / "CTAffineRegisterLib"
    shutil.copytree(LIB_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    target = copy / module
    target.write_text(target.read_text(encoding="utf-8") + f"\n{line}\n", encoding="utf-8")
    done = _lint_imports(tmp_path, tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"{contract}" in done.stdout and "BROKEN" in done.stdout


# ---------------------------------------------------------------------------------------------
# Docstrings that generate the reference


def _public_function(name: str):
    if name == "register_volume_nodes":
        pytest.importorskip("slicer", reason="the MRML modules need the slicer-core wheel")
        from CTAffineRegisterLib.mrml.volume_nodes import register_volume_nodes

        return register_volume_nodes
    return getattr(CTAffineRegisterLib, name)


@pytest.mark.parametrize(
    "name",
    sorted(
        name
        for name in CTAffineRegisterLib.__all__
        if name == "register_volume_nodes" or inspect.isfunction(getattr(CTAffineRegisterLib, name, None))
    ),
)
def test_every_public_function_documents_its_arguments_and_result(name):
    """Google style, as the API reference is generated from it: the "why" paragraph first, then
    ``Args:`` naming every parameter, ``Returns:`` unless it returns None, ``Raises:`` when it raises."""
    function = _public_function(name)
    doc = inspect.getdoc(function) or ""
    summary, _, sections = doc.partition("\nArgs:\n")
    assert summary.strip() and sections, f"{name}: no why paragraph, or no Args: section"
    for parameter in inspect.signature(function).parameters:
        assert f"\n    {parameter}: " in f"\n{sections}", f"{name}: Args: does not describe {parameter}"
    returns_none = inspect.signature(function).return_annotation in (None, "None")
    assert returns_none or "\nReturns:\n" in doc, f"{name}: no Returns: section"
    raises = any(
        isinstance(node, ast.Raise)
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function))))
    )
    assert not raises or "\nRaises:\n" in doc, f"{name}: raises, but has no Raises: section"


@pytest.mark.parametrize(
    "name", ["CaseResult", "DicomPadding", "LoadedImage", "MovingInput", "ProgressEvent", "SyntheticPair"]
)
def test_public_data_classes_document_their_attributes(name):
    cls = getattr(CTAffineRegisterLib, name)
    doc = inspect.getdoc(cls) or ""
    assert "\nAttributes:\n" in doc, name
    for field in dataclasses.fields(cls):
        assert f"\n    {field.name}: " in doc, f"{name}: Attributes: does not describe {field.name}"
