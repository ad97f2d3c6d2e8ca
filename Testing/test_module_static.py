"""What can be checked of the Slicer module without Slicer: layout rules, CMake lists, .ui bindings.

Plain Python: nothing here imports ``slicer``, ``qt`` or the module file (it is parsed, not run).
The batch script is run with plain Python, and the way Slicer runs it as far as the script can tell
(``Testing/support/slicer_script_host.py``: no Slicer, no MRML, no Qt).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Optional

import pytest
import SimpleITK as sitk

ROOT = Path(__file__).resolve().parents[1]
MODULE_DIR = ROOT / "CTAffineRegister"
MODULE_FILE = MODULE_DIR / "CTAffineRegister.py"
LIB_DIR = MODULE_DIR / "CTAffineRegisterLib"
UI_FILE = MODULE_DIR / "Resources" / "UI" / "CTAffineRegister.ui"
BATCH_SCRIPT = LIB_DIR / "cli" / "slicer_batch.py"

QT_MODULES = {"qt", "ctk", "PythonQt", "slicer.ScriptedLoadableModule"}
# Modules of the Lib allowed to import the MRML side (never Qt).
MRML_MODULES = {"mrml/volume_nodes.py", "cli/slicer_batch.py"}
# The one Lib module that may import the optional Dask extra (only when a cohort runs on Dask).
DASK_MODULES = {"cohort/dask_backend.py"}

# Widget classes a Slicer 5.8+ .ui can use: Qt's own, and the CTK/MRML ones Slicer wraps.
QT_WIDGETS = {
    "QWidget", "QLabel", "QPushButton", "QCheckBox", "QComboBox", "QSpinBox", "QDoubleSpinBox",
    "QLineEdit", "QTextEdit", "QProgressBar", "QGroupBox", "QFrame", "QSlider", "QRadioButton",
}  # fmt: skip
SLICER_CUSTOM_WIDGETS = {
    "ctkCollapsibleButton", "ctkSliderWidget", "ctkDoubleSpinBox", "ctkCheckBox", "ctkComboBox",
    "ctkPathLineEdit", "ctkDirectoryButton", "ctkRangeWidget",
    "qMRMLWidget", "qMRMLNodeComboBox", "qMRMLCheckableNodeComboBox", "qMRMLSliderWidget", "qMRMLSpinBox",
}  # fmt: skip
# Which widget a parameter type can be bound to: the canRepresent() rules of Slicer 5.8's
# Base/Python/slicer/parameterNodeWrapper/guiConnectors.py (only float, not int, for double spin boxes).
CONNECTABLE = {
    "node": {"qMRMLNodeComboBox"},
    "bool": {"QCheckBox", "ctkCheckBox", "QPushButton"},
    "float": {"QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget", "ctkDoubleSpinBox", "qMRMLSpinBox"},
    "int": {"QSlider", "QSpinBox"},
    "choice": {"QComboBox", "ctkComboBox"},
    "str": {"QLineEdit", "QLabel", "QTextEdit"},
}


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports count too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _lib_files() -> list[Path]:
    """Every module of the Lib package, in every subfolder."""
    return sorted(path for path in LIB_DIR.rglob("*.py") if "__pycache__" not in path.parts)


def _python_files() -> list[Path]:
    return sorted(path for path in MODULE_DIR.rglob("*.py") if "egg-info" not in str(path))


# ---------------------------------------------------------------------------------------------
# Layout


def test_only_the_module_file_imports_qt():
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imports(path) & QT_MODULES)
        for path in _python_files()
        if path != MODULE_FILE and _imports(path) & QT_MODULES
    }
    assert offenders == {}
    assert {"qt", "slicer.ScriptedLoadableModule"} <= _imports(MODULE_FILE)


def test_pure_lib_modules_import_only_simpleitk_numpy_and_stdlib():
    stdlib = getattr(sys, "stdlib_module_names", None)
    if stdlib is None:
        pytest.skip("sys.stdlib_module_names needs Python 3.10")
    allowed = set(stdlib) | {"SimpleITK", "numpy", "CTAffineRegisterLib"}
    for path in _lib_files():
        name = path.relative_to(LIB_DIR).as_posix()
        extra = {"slicer", "vtk"} if name in MRML_MODULES else set()
        extra |= {"dask", "distributed"} if name in DASK_MODULES else set()
        roots = {name.split(".")[0] for name in _imports(path)}
        assert roots <= allowed | extra, f"{name} imports {sorted(roots - allowed - extra)}"


def test_module_file_compiles_without_qt():
    source = MODULE_FILE.read_text(encoding="utf-8")
    compile(source, str(MODULE_FILE), "exec")
    classes = {node.name: node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)}
    bases = {name: {ast.unparse(base) for base in node.bases} for name, node in classes.items()}
    assert "ScriptedLoadableModule" in bases["CTAffineRegister"]
    assert "ScriptedLoadableModuleWidget" in bases["CTAffineRegisterWidget"]
    assert "ScriptedLoadableModuleLogic" in bases["CTAffineRegisterLogic"]
    assert "ScriptedLoadableModuleTest" in bases["CTAffineRegisterTest"]
    test_methods = {
        node.name for node in classes["CTAffineRegisterTest"].body if isinstance(node, ast.FunctionDef)
    }
    assert "runTest" in test_methods and any(name.startswith("test_") for name in test_methods)
    assert "from __future__ import annotations" in source


# ---------------------------------------------------------------------------------------------
# CMake


def _cmake_list(text: str, variable: str) -> list[str]:
    match = re.search(rf"set\(\s*{variable}\s+(.*?)\)", text, re.S)
    assert match, f"{variable} is not set"
    return match.group(1).split()


def test_every_lib_file_is_listed_in_scripts():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"set\(\s*MODULE_NAME\s+CTAffineRegister\s*\)", text)
    scripts = _cmake_list(text, "MODULE_PYTHON_SCRIPTS")
    expected = {"${MODULE_NAME}.py"} | {
        f"CTAffineRegisterLib/{path.relative_to(LIB_DIR).as_posix()}" for path in _lib_files()
    }
    assert set(scripts) == expected
    assert len(scripts) == len(set(scripts))


def test_module_cmake_builds_resources_and_tests():
    text = (MODULE_DIR / "CMakeLists.txt").read_text(encoding="utf-8")
    resources = _cmake_list(text, "MODULE_PYTHON_RESOURCES")
    assert set(resources) == {"Resources/Icons/${MODULE_NAME}.png", "Resources/UI/${MODULE_NAME}.ui"}
    for resource in resources:
        assert (MODULE_DIR / resource.replace("${MODULE_NAME}", "CTAffineRegister")).is_file()
    build = re.search(r"slicerMacroBuildScriptedModule\((.*?)\)", text, re.S).group(1).split()
    assert build[:2] == ["NAME", "${MODULE_NAME}"]
    assert {"SCRIPTS", "RESOURCES", "WITH_GENERIC_TESTS"} <= set(build)
    assert re.search(
        r"if\(BUILD_TESTING\)\s+(#.*\n\s*)*slicer_add_python_unittest\(SCRIPT \$\{MODULE_NAME\}\.py\)", text
    )


HOMEPAGE = "https://github.com/ctaffineregister/SlicerCTAffineRegister"
RAW = "https://raw.githubusercontent.com/ctaffineregister/SlicerCTAffineRegister/main/"
# Keys of Slicer's extension catalog entry schema v1.0.1 (Schemas/ in Slicer/Slicer) and their types.
CATALOG_ENTRY_KEYS = {
    "$schema": str, "category": str, "scm_url": str, "scm_revision": str, "scm_type": str,
    "build_dependencies": list, "build_subdirectory": str, "enabled": bool, "tier": int,
}  # fmt: skip


def _extension_metadata() -> dict:
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    return dict(re.findall(r'set\((EXTENSION_\w+)\s+"([^"]*)"\)', text))


def test_extension_cmake_has_metadata_and_real_urls():
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    for line in (
        "find_package(Slicer REQUIRED)",
        "include(${Slicer_USE_FILE})",
        "add_subdirectory(CTAffineRegister)",
        "include(${Slicer_EXTENSION_GENERATE_CONFIG})",
        "include(${Slicer_EXTENSION_CPACK})",
    ):
        assert line in text
    metadata = _extension_metadata()
    assert metadata["EXTENSION_CATEGORY"] == "Registration"
    assert metadata["EXTENSION_HOMEPAGE"] == HOMEPAGE
    assert metadata["EXTENSION_DESCRIPTION"] and metadata["EXTENSION_DEPENDS"] == "NA"
    # the index's check_cmakelists_content reads the screenshot list this way: no space before ")"
    assert re.search(r'set\s*\(EXTENSION_SCREENSHOTURLS\s*"([^"]+)"\)', text)
    for key in ("EXTENSION_ICONURL", "EXTENSION_SCREENSHOTURLS"):
        for url in metadata[key].split():
            assert url.startswith(RAW), url
            assert (ROOT / url[len(RAW) :]).is_file(), f"{key} points at a file the repository lacks: {url}"
    icon = sitk.ReadImage(str(ROOT / metadata["EXTENSION_ICONURL"][len(RAW) :]))
    assert icon.GetSize() == (128, 128)
    screenshot = sitk.ReadImage(str(ROOT / metadata["EXTENSION_SCREENSHOTURLS"].split()[0][len(RAW) :]))
    assert screenshot.GetSize()[0] >= 800  # the panel next to the views, readable


# Who the extension is by, until the maintainers are named: a clearly named organisation and where it is.
CONTRIBUTOR = f"CTAffineRegister project team ({HOMEPAGE})"


def test_contributors_name_the_project_team_and_its_repository_not_a_placeholder():
    """Issue 21 item 20: the Extensions Index and the module's Help & Acknowledgment show this line."""
    contributors = _extension_metadata()["EXTENSION_CONTRIBUTORS"]
    entry = json.loads((ROOT / "CTAffineRegister.json").read_text(encoding="utf-8"))
    assert entry["scm_url"] == HOMEPAGE + ".git"  # the repository of the index entry
    assert contributors == CONTRIBUTOR
    cmake_line = next(
        line
        for line in (ROOT / "CMakeLists.txt").read_text(encoding="utf-8").splitlines()
        if "EXTENSION_CONTRIBUTORS" in line
    )
    assert not re.search(r"(?i)maintainers|placeholder|replace|todo|firstname", cmake_line), cmake_line
    module = MODULE_FILE.read_text(encoding="utf-8")
    (listed,) = [
        ast.literal_eval(node.value)
        for node in ast.walk(ast.parse(module))
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == "self.parent.contributors"
    ]
    assert listed == [CONTRIBUTOR]
    assert "Developed by the CTAffineRegister project team" in module and HOMEPAGE in module


def test_extension_index_entry_matches_the_extension():
    entry_file = ROOT / "CTAffineRegister.json"
    raw = entry_file.read_bytes()
    assert b"\r" not in raw  # the index wants LF line endings
    entry = json.loads(raw)
    assert entry["$schema"].endswith("/Schemas/slicer-extension-catalog-entry-schema-v1.0.1.json#")
    assert {"$schema", "category", "scm_url"} <= set(entry) <= set(CATALOG_ENTRY_KEYS)
    for key, value in entry.items():
        assert isinstance(value, CATALOG_ENTRY_KEYS[key]), key
    text = (ROOT / "CMakeLists.txt").read_text(encoding="utf-8")
    assert re.search(r"project\s*\(\s*([^\s)]+)", text).group(1) == entry_file.stem  # the index compares them
    assert not entry_file.stem.lower().startswith("slicer")
    assert entry["category"] == _extension_metadata()["EXTENSION_CATEGORY"]
    assert entry["scm_url"] == HOMEPAGE + ".git"
    repository = entry["scm_url"].rstrip("/").split("/")[-1].removesuffix(".git")
    assert repository.startswith("Slicer")  # check_git_repository_name in Slicer/ExtensionsIndex
    assert entry["build_dependencies"] == [] and _extension_metadata()["EXTENSION_DEPENDS"] == "NA"
    assert entry["scm_revision"] and 1 <= entry.get("tier", 1) <= 5


def test_module_icon_is_128_pixels():
    assert sitk.ReadImage(str(MODULE_DIR / "Resources" / "Icons" / "CTAffineRegister.png")).GetSize() == (
        128,
        128,
    )


# ---------------------------------------------------------------------------------------------
# .ui and parameter node


def _parameters() -> dict[str, str]:
    """Name → annotation source of the class decorated with @parameterNodeWrapper."""
    tree = ast.parse(MODULE_FILE.read_text(encoding="utf-8"))
    wrapped = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and any(ast.unparse(d) == "parameterNodeWrapper" for d in node.decorator_list)
    ]
    assert len(wrapped) == 1
    return {
        node.target.id: ast.unparse(node.annotation)
        for node in wrapped[0].body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
    }


def _functions(path: Path, class_name: str) -> dict[str, ast.FunctionDef]:
    """The methods of a class of a file, by name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    (cls,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == class_name]
    return {node.name: node for node in cls.body if isinstance(node, ast.FunctionDef)}


def _kind(annotation: str) -> str:
    if annotation.startswith("list["):
        return "list"
    if "Choice(" in annotation:
        return "choice"
    base = annotation.removeprefix("Annotated[").split(",")[0].strip("] ")
    return "node" if base.startswith("vtkMRML") else base


def _ui_widgets() -> list[ElementTree.Element]:
    return list(ElementTree.parse(UI_FILE).getroot().iter("widget"))


def _bindings() -> dict[str, ElementTree.Element]:
    bound = {}
    for widget in _ui_widgets():
        for prop in widget.findall("property"):
            if prop.get("name") == "SlicerParameterName":
                name = prop.find("string").text
                assert name not in bound, f"{name} is bound twice"
                bound[name] = widget
    return bound


def test_every_binding_names_a_parameter_of_a_connectable_type():
    parameters = _parameters()
    bindings = _bindings()
    assert bindings, "no widget is bound to the parameter node"
    for name, widget in bindings.items():
        assert name in parameters, f"{widget.get('name')} is bound to unknown parameter {name!r}"
        kind = _kind(parameters[name])
        assert widget.get("class") in CONNECTABLE.get(kind, set()), (
            f"{widget.get('name')} ({widget.get('class')}) cannot show {name}: {parameters[name]}"
        )


def test_scalar_parameters_are_bound_by_the_wrapper_and_node_parameters_by_hand():
    """Node selectors rebuild their rows on scene import: the widget binds them itself, with a guard."""
    parameters = _parameters()
    bound = set(_bindings())
    by_hand = {name for name, annotation in parameters.items() if _kind(annotation) in ("node", "list")}
    assert by_hand == {"fixedVolume", "movingVolumes"}
    assert set(parameters) - by_hand == bound
    source = MODULE_FILE.read_text(encoding="utf-8")
    for name in by_hand:
        assert f"self._parameterNode.{name} = " in source
    assert "checkedNodes()" in source and "currentNodeChanged(vtkMRMLNode*)" in source
    handlers = _functions(MODULE_FILE, "CTAffineRegisterWidget")
    for handler in ("onFixedVolumeSelected", "onMovingVolumesChecked"):
        assert "self._takesSelectorChanges()" in ast.unparse(handlers[handler].body[0].test)
    guard = ast.unparse(handlers["_takesSelectorChanges"])
    assert "self._sceneWatch.busy" in guard and "self.parent.isEntered" in guard


def test_no_dynamic_property_other_than_slicer_parameter_name():
    """The scripted template's own checkbox has a property named after its parameter: it binds nothing."""
    for widget in _ui_widgets():
        for prop in widget.findall("property"):
            if prop.get("stdset") == "0":
                assert prop.get("name") == "SlicerParameterName", (
                    f"{widget.get('name')} has dynamic property {prop.get('name')!r}: "
                    "did you mean SlicerParameterName?"
                )


def test_ui_widget_classes_are_provided_by_slicer_and_declared():
    root = ElementTree.parse(UI_FILE).getroot()
    declared = {custom.find("class").text for custom in root.iter("customwidget")}
    assert declared <= SLICER_CUSTOM_WIDGETS
    for widget in _ui_widgets():
        cls = widget.get("class")
        assert cls in QT_WIDGETS or cls in declared, f"{widget.get('name')}: unknown widget class {cls}"
    assert root.find("widget").get("class") == "qMRMLWidget"


def test_mrml_widgets_get_the_scene():
    root = ElementTree.parse(UI_FILE).getroot()
    top = root.find("widget").get("name")
    wired = {
        connection.find("receiver").text
        for connection in root.iter("connection")
        if connection.find("sender").text == top
        and connection.find("signal").text == "mrmlSceneChanged(vtkMRMLScene*)"
        and connection.find("slot").text == "setMRMLScene(vtkMRMLScene*)"
    }
    mrml = {widget.get("name") for widget in _ui_widgets()[1:] if widget.get("class").startswith("qMRML")}
    assert mrml and mrml == wired


# slicer.util functions read in Base/Python/slicer/util.py at tags v5.8.0 and v5.10.0 (add a name
# only after checking it exists in both).
SLICER_UTIL_5_8_AND_5_10 = {
    "RenderBlocker", "addVolumeFromArray", "arrayFromVolume", "arrayFromVolumeModified",
    "childWidgetVariables", "errorDisplay", "exit", "getModuleWidget", "loadScene", "loadUI",
    "mainWindow", "saveScene", "selectModule", "setSliceViewerLayers", "tryWithErrorDisplay",
    "updateVolumeFromArray", "VTKObservationMixin", "WaitCursor", "NodeModify",
}  # fmt: skip


def test_module_and_bridge_use_only_slicer_util_functions_of_slicer_5_8_and_5_10():
    used = set()
    for path in [MODULE_FILE, *_lib_files()]:
        used |= set(re.findall(r"slicer\.util\.(\w+)", path.read_text(encoding="utf-8")))
    assert used and used <= SLICER_UTIL_5_8_AND_5_10, sorted(used - SLICER_UTIL_5_8_AND_5_10)


def test_module_uses_only_widgets_the_ui_has():
    names = {widget.get("name") for widget in _ui_widgets()}
    used = set(re.findall(r"self\.ui\.(\w+)", MODULE_FILE.read_text(encoding="utf-8")))
    assert used and used <= names, sorted(used - names)


# ---------------------------------------------------------------------------------------------
# Batch script, with plain Python


def test_batch_arguments_force_one_job_only_when_workers_cannot_start():
    from CTAffineRegisterLib.cli.slicer_batch import cli_arguments

    argv = ["--fixed", "a.nrrd", "--moving", "b.nrrd", "--out", "o"]
    assert cli_arguments(argv, serial=True) == ["register", *argv, "--jobs", "1"]
    assert cli_arguments(argv, serial=False) == ["register", *argv]
    assert cli_arguments([*argv, "--jobs", "3"], serial=True) == ["register", *argv, "--jobs", "3"]
    assert cli_arguments([*argv, "--jobs=2"], serial=True)[-1] == "--jobs=2"


@pytest.fixture(scope="module")
def small_pair_files(tmp_path_factory):
    from CTAffineRegisterLib import synthetic

    folder = tmp_path_factory.mktemp("batch")
    pair = synthetic.make_pair(
        seed=5, fixed_size=(48, 48, 32), fixed_spacing=(5.0, 5.0, 7.0), moving_spacing=(5.75, 5.75, 8.0)
    )
    sitk.WriteImage(pair.fixed, str(folder / "fixed.nrrd"))
    sitk.WriteImage(pair.moving, str(folder / "moving.nii.gz"))
    return folder


def _run_batch(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(BATCH_SCRIPT), *arguments], capture_output=True, text=True, cwd=str(ROOT)
    )


def test_batch_script_runs_with_plain_python(small_pair_files):
    out = small_pair_files / "out"
    done = _run_batch(
        "--fixed", str(small_pair_files / "fixed.nrrd"),
        "--moving", str(small_pair_files / "moving.nii.gz"),
        "--out", str(out), "--jobs", "1", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (out / "report.json").is_file()
    # the same outputs as the command-line tool writes
    from CTAffineRegisterLib.cohort.batch import output_paths

    paths = output_paths(str(out), "moving")
    assert all(Path(path).is_file() for path in paths.values()), paths
    registered = sitk.ReadImage(paths["registered"])
    fixed = sitk.ReadImage(str(small_pair_files / "fixed.nrrd"))
    assert registered.GetSize() == fixed.GetSize()
    assert sitk.GetArrayViewFromImage(registered).min() > -1100


def test_batch_script_passes_on_the_cli_exit_status(small_pair_files):
    out = small_pair_files / "never"
    missing = _run_batch("--fixed", str(small_pair_files / "absent.nrrd"), "--moving", "x", "--out", str(out))
    assert missing.returncode == 2 and "absent.nrrd" in missing.stderr
    usage = _run_batch("--no-such-option")
    assert usage.returncode == 2 and "usage" in usage.stderr


# The script as Slicer runs it (Testing/support/slicer_script_host.py: sys.executable becomes a PythonSlicer
# launcher after start-up, slicer.util.exit ends the application, which otherwise stays up).

HOST = ROOT / "Testing" / "support" / "slicer_script_host.py"


def _launcher(folder: Path, works: bool = True) -> Path:
    """A stand-in for PythonSlicer: like CTK's launcher it runs the interpreter as a child process
    (inherited pipes must survive one more hop), and it logs every start."""
    launcher = folder / ("PythonSlicer" if works else "BrokenPythonSlicer")
    body = f'"{sys.executable}" "$@"' if works else "exit 3"
    launcher.write_text(f'#!/bin/sh\necho "$*" >> "{folder}/launches.log"\n{body}\n', encoding="utf-8")
    launcher.chmod(0o755)
    return launcher


def _run_in_slicer(
    *arguments: str, launcher: Optional[Path] = None, host_options=()
) -> subprocess.CompletedProcess:
    command = [sys.executable, str(HOST), *host_options]
    if launcher is not None:
        command += ["--launcher", str(launcher)]
    return subprocess.run(
        [*command, str(BATCH_SCRIPT), *arguments], capture_output=True, text=True, cwd=str(ROOT), timeout=300
    )


@pytest.mark.skipif(sys.platform == "win32", reason="the launcher stand-in is a shell script")
def test_batch_script_ends_slicer_with_one_error_line_when_the_package_cannot_load(small_pair_files):
    done = _run_in_slicer(
        "--fixed", str(small_pair_files / "fixed.nrrd"), "--moving", "m",
        "--out", str(small_pair_files / "o"),
        host_options=["--block-import", "SimpleITK", "--stay-up", "120"],
    )  # fmt: skip
    assert done.returncode == 1, (done.returncode, done.stderr)  # 99 would mean Slicer stayed up
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot load CTAffineRegisterLib"), lines
    assert "SimpleITK" in lines[0]


@pytest.mark.skipif(sys.platform == "win32", reason="the launcher stand-in is a shell script")
def test_batch_script_in_slicer_starts_workers_through_python_slicer(small_pair_files, tmp_path):
    launcher = _launcher(tmp_path)
    out = tmp_path / "out"
    moving = str(small_pair_files / "moving.nii.gz")
    done = _run_in_slicer(
        "--fixed", str(small_pair_files / "fixed.nrrd"), "--moving", moving, moving,
        "--out", str(out), "--jobs", "2", "--quiet",
        launcher=launcher, host_options=["--import-spawn-early"],  # spawn read sys.executable too soon
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["backend"] == "2 local worker processes"
    assert [case["status"] for case in report["cases"]] == ["ok", "ok"]
    starts = (tmp_path / "launches.log").read_text(encoding="utf-8").splitlines()
    workers = [line for line in starts if "spawn_main" in line]
    assert len(workers) == 3, starts  # the probe and the two workers, all through the launcher


@pytest.mark.skipif(sys.platform == "win32", reason="the launcher stand-in is a shell script")
def test_batch_script_in_slicer_runs_cases_one_at_a_time_when_workers_cannot_start(
    small_pair_files, tmp_path
):
    out = tmp_path / "out"
    done = _run_in_slicer(
        "--fixed", str(small_pair_files / "fixed.nrrd"), "--moving", str(small_pair_files / "moving.nii.gz"),
        "--out", str(out), "--quiet",
        launcher=_launcher(tmp_path, works=False),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "note: cases run one at a time: a worker process started with" in done.stderr
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["run"]["backend"] == "in this process, one case at a time"
    assert report["cases"][0]["status"] == "ok"


def test_batch_script_in_slicer_shows_the_tool_help_and_exits(tmp_path):
    done = _run_in_slicer("--help", launcher=_launcher(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "usage: ct-affine-register register" in done.stdout and "--fixed" in done.stdout
    assert not (tmp_path / "launches.log").exists()  # no worker probe for a help text


def test_batch_script_has_a_help_flag_the_slicer_launcher_leaves_alone(tmp_path):
    """Issue 21 item 21: CTK's launcher prints its own help for ``--help``/``-h`` anywhere on the command
    line, even after ``--`` (``ctkAppLauncher::processArguments``); ``--tool-help`` is the batch's own."""
    done = _run_in_slicer("--tool-help", launcher=_launcher(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "usage: ct-affine-register register" in done.stdout and "--fixed" in done.stdout
    assert not (tmp_path / "launches.log").exists()  # no worker probe for a help text
    plain = _run_batch("--tool-help")
    assert plain.returncode == 0 and "usage: ct-affine-register register" in plain.stdout
    from CTAffineRegisterLib.cli.slicer_batch import cli_arguments

    assert cli_arguments(["--tool-help"], serial=False) == ["register", "--help"]
    batch_section = (ROOT / "docs" / "how-to" / "console-and-batch.md").read_text(encoding="utf-8")
    assert "slicer_batch.py -- --tool-help" in batch_section
    assert "launcher" in batch_section and "-- --help" in batch_section
