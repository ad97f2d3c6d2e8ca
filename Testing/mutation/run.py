"""Generated mutants, module by module: a thin driver around mutmut 3 (not part of the test run, not in CI).

Why a driver: mutmut expects the package at the top of the project (or under ``src/``); ours lives under
``CTAffineRegister/``, so mutmut would name the mutants ``CTAffineRegister.CTAffineRegisterLib...`` while
the tests import ``CTAffineRegisterLib...`` and no test would be linked to any mutant. The driver strips
that prefix, makes the mutated copy (``mutants/``, gitignored) the one the tests and their subprocesses
import, points the tests at the shared CT samples (the copy is one folder deeper), restricts each run to
the modules named, and keeps the results in the repository (``Testing/mutation/results/``) so a rerun in
a fresh clone only tests the functions that changed since (mutmut keys each result by a hash of its
function).

mutmut's stats phase runs the selected tests once and records which tests reach each function; a mutant
then runs only those tests (the coverage-based selection). The test selection and the skipped noise are
in ``[tool.mutmut]`` of ``pyproject.toml``.

Usage (from the project root; nice it, the machine is shared)::

    nice -n 19 python Testing/mutation/run.py padding/analysis core/affine    # run (incremental)
    nice -n 19 python Testing/mutation/run.py --retest padding/analysis       # rerun its survivors
    nice -n 19 python Testing/mutation/run.py --finish padding/analysis       # survivors + not yet run
    nice -n 19 python Testing/mutation/run.py mrml/volume_nodes --only ras_from_lps '_geo*'  # some functions
    python Testing/mutation/run.py --survivors padding/analysis               # survivors to triage
    python Testing/mutation/run.py --report                                   # the table for the docs
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import shutil
import signal
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
EQUIVALENTS = HERE / "equivalents.txt"
PACKAGE_DIR = "CTAffineRegister"
LIB = "CTAffineRegisterLib"

# mutmut's exit-code classes (mutmut.stats.status_by_exit_code), kept here so --report needs no mutmut.
KILLED = {1, 3}
SURVIVED = {0}
NO_TESTS = {5, 33}
# A timeout, or a test process killed (by hand, for an endless loop) or crashed: the mutant was detected.
TIMEOUT = {36, -24, 24, 152, 255, -9, -11}


def module_path(module: str) -> Path:
    """``padding/analysis`` -> ``CTAffineRegister/CTAffineRegisterLib/padding/analysis.py``."""
    return Path(PACKAGE_DIR) / LIB / (module.strip("/").removesuffix(".py") + ".py")


def module_key(module: str) -> str:
    """``padding/analysis`` -> ``CTAffineRegisterLib.padding.analysis``: the prefix of its mutant names."""
    return LIB + "." + module.strip("/").removesuffix(".py").replace("/", ".")


def result_file(module: str) -> Path:
    return RESULTS / (module_key(module).removeprefix(LIB + ".") + ".json")


def load_equivalents() -> dict[str, str]:
    """Mutant name -> one line saying why it cannot change behaviour."""
    equivalents = {}
    if EQUIVALENTS.exists():
        for line in EQUIVALENTS.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                name, _, why = line.partition(" ")
                equivalents[name] = why.strip()
    return equivalents


def prepare_mutmut(modules: list[str]):
    """Import mutmut with the prefix fix and the module restriction in place; return its ``__main__``."""
    os.chdir(ROOT)
    mutated_package_root = ROOT / "mutants" / PACKAGE_DIR
    mutated_package_root.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("CTAR_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    # The tests' own subprocesses (the CLI) must import the mutated copy too, never an installed one.
    os.environ["PYTHONPATH"] = os.pathsep.join([str(mutated_package_root), os.environ.get("PYTHONPATH", "")])
    sys.path.insert(0, str(mutated_package_root))

    import mutmut.__main__ as mutmut_main
    import mutmut.mutation.file_mutation as file_mutation
    import mutmut.utils.format_utils as format_utils
    from mutmut.configuration import config

    original = format_utils.get_mutant_name

    def get_mutant_name(relative_source_path, mutant_method_name):
        name = original(relative_source_path, mutant_method_name)
        return name.removeprefix(PACKAGE_DIR + ".")

    for namespace in (format_utils, file_mutation, mutmut_main):
        namespace.get_mutant_name = get_mutant_name

    # A mutant runs the tests that reach it; fastest first, so a killed mutant (most of them) stops
    # after its fastest failing test rather than after a registration.
    from mutmut.state import state
    from mutmut.workers.isolation import ForkRunner

    submit = ForkRunner.submit

    def fastest_first(self, mutant_name, tests, cpu_time_limit, estimated_time):
        durations = state().duration_by_test
        tests = sorted(tests, key=lambda test: (durations.get(test, 0.0), test))
        return submit(self, mutant_name, tests, cpu_time_limit, estimated_time)

    ForkRunner.submit = fastest_first
    config().only_mutate = [str(module_path(module)) for module in modules]

    regenerated = False
    for module in modules:
        # A fresh clone: put back the recorded results, so only functions changed since are tested again.
        saved, meta = result_file(module), ROOT / "mutants" / (str(module_path(module)) + ".meta")
        if saved.exists() and not meta.exists():
            meta.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(saved, meta)
        # mutmut judges "already mutated" by modification times, so a plain copy left by a run on other
        # modules would be taken for a mutated one: remove it, mutmut writes the mutants again.
        copy = ROOT / "mutants" / module_path(module)
        if copy.exists() and "mutmut" not in copy.read_text(encoding="utf-8"):
            copy.unlink()
            regenerated = True
        regenerated = regenerated or not copy.exists()
    # Which tests reach which function is recorded only for functions mutated at the time: after a
    # change of modules, record it again (one run of the selected tests).
    stats = ROOT / "mutants" / "mutmut-stats.json"
    if stats.exists() and (regenerated or selection_changed(stats, config())):
        stats.unlink()
    return mutmut_main


def selection_changed(stats: Path, config) -> bool:
    """Whether the test selection (or pytest's options) changed since the stats were recorded.

    mutmut itself answers such a change by resetting every recorded result, including those of
    modules run earlier; they are keyed by a hash of their function and stay valid (a new test can only
    kill more), so the driver records the stats again instead and keeps the results: ``--retest`` then
    gives the survivors to the tests added.
    """
    try:
        recorded = json.loads(stats.read_text(encoding="utf-8")).get("config_fingerprint", {})
    except (OSError, ValueError):
        return True
    current = config.config_fingerprint()
    return any(recorded.get(group) != current[group] for group in ("test_execution", "test_selection"))


def save_results(modules: list[str]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    for module in modules:
        meta = ROOT / "mutants" / (str(module_path(module)) + ".meta")
        if meta.exists():
            data = json.loads(meta.read_text(encoding="utf-8"))
            result_file(module).write_text(
                json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8"
            )


def show(modules: list[str]) -> None:
    """Print each survivor (not marked equivalent) of the last run as a diff, to triage it."""
    os.chdir(ROOT)
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    equivalents = load_equivalents()
    for module in modules:
        meta = ROOT / "mutants" / (str(module_path(module)) + ".meta")
        record = meta if meta.exists() else result_file(module)  # a run still going: its live record
        codes = json.loads(record.read_text(encoding="utf-8"))["exit_code_by_key"]
        source = _mutated_source(module)
        for name, code in sorted(codes.items()):
            if name in equivalents or code is None or code in KILLED or code in TIMEOUT:
                continue
            status = "no test reaches it" if code in NO_TESTS else f"survived (exit {code})"
            print(f"# {name}: {status}")
            print(get_diff_for_mutant(name, source=source, path=module_path(module)))
            print()


def _mutated_source(module: str) -> str:
    """The module with all its mutants in place: mutmut's copy, or made again when a run on other modules
    has put the plain source back in ``mutants/`` (same names: same source, same configuration)."""
    copy = ROOT / "mutants" / module_path(module)
    if copy.exists():
        text = copy.read_text(encoding="utf-8")
        if "mutmut" in text:
            return text
    from mutmut.mutation.file_mutation import mutate_file_contents

    original = (ROOT / module_path(module)).read_text(encoding="utf-8")
    return mutate_file_contents(str(module_path(module)), original).code


def figures(module: str, equivalents: dict[str, str]) -> dict[str, int]:
    codes = json.loads(result_file(module).read_text(encoding="utf-8"))["exit_code_by_key"]
    counts = dict.fromkeys(
        ("mutants", "unchecked", "killed", "survived", "no_tests", "timeout", "equivalent", "other"), 0
    )
    for name, code in codes.items():
        counts["mutants"] += 1
        if code is None:
            counts["unchecked"] += 1
        elif code in KILLED:
            counts["killed"] += 1
        elif code in TIMEOUT:
            counts["timeout"] += 1
        elif name in equivalents:
            counts["equivalent"] += 1
        elif code in SURVIVED:
            counts["survived"] += 1
        elif code in NO_TESTS:
            counts["no_tests"] += 1
        else:
            counts["other"] += 1
    return counts


def survivors(module: str, equivalents: dict[str, str]) -> list[str]:
    codes = json.loads(result_file(module).read_text(encoding="utf-8"))["exit_code_by_key"]
    return sorted(
        name
        for name, code in codes.items()
        if name not in equivalents and code is not None and code not in KILLED and code not in TIMEOUT
    )


def unchecked(module: str) -> list[str]:
    """The module's mutants not run yet (a run stopped before them)."""
    if not result_file(module).exists():
        return []
    codes = json.loads(result_file(module).read_text(encoding="utf-8"))["exit_code_by_key"]
    return sorted(name for name, code in codes.items() if code is None)


def report() -> None:
    """The per-module table of docs/development/testing.md, from the recorded results."""
    equivalents = load_equivalents()
    print(
        "| module | mutants | not yet run | killed | timeout or crash | equivalent | survived "
        "| no test reaches "
        "| survival |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    total: dict[str, int] = {}
    for saved in sorted(RESULTS.glob("*.json")):
        module = saved.stem.replace(".", "/")
        counts = figures(module, equivalents)
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
        print(row(f"`{module}.py`", counts))
    if total:
        print(row("**total**", total))


def row(name: str, counts: dict[str, int]) -> str:
    """Survival: survivors (and mutants no test reaches) over the mutants run, equivalents left out."""
    alive = counts["survived"] + counts["no_tests"] + counts["other"]
    judged = counts["mutants"] - counts["unchecked"] - counts["equivalent"]
    rate = f"{100.0 * alive / judged:.1f} %" if judged else "-"
    return (
        f"| {name} | {counts['mutants']} | {counts['unchecked']} | {counts['killed']} | {counts['timeout']} "
        f"| {counts['equivalent']} | {counts['survived'] + counts['other']} | {counts['no_tests']} | {rate} |"
    )


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _mutant_stem(function: str) -> str:
    """How mutmut names the mutants of a function (``x_name``) or of a method (``Class.name`` gives
    ``xǁClassǁname``), patterns included."""
    if "." in function:
        owner, _, method = function.rpartition(".")
        return f"x\u01c1{owner}\u01c1{method}"
    return f"x_{function}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", help="modules under CTAffineRegisterLib, e.g. padding/analysis")
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at a time (default 2)")
    parser.add_argument("--retest", action="store_true", help="test the modules' survivors again")
    parser.add_argument(
        "--finish",
        action="store_true",
        help="in one run: the survivors again (after new tests) and the mutants not run yet",
    )
    parser.add_argument("--survivors", action="store_true", help="list the survivors not marked equivalent")
    parser.add_argument(
        "--show", action="store_true", help="the survivors' diffs (from mutants/, the last run)"
    )
    parser.add_argument("--report", action="store_true", help="print the per-module table")
    parser.add_argument(
        "--only",
        nargs="+",
        metavar="FUNCTION",
        help="run only the mutants of these functions or methods (names or fnmatch patterns, Class.method "
        "for a method, e.g. ras_from_lps "
        "'_geometry*'): a large module whose tests are slow, a few functions at a time",
    )
    args = parser.parse_args(argv)
    if args.report:
        report()
        return 0
    if not args.modules:
        parser.error("name at least one module (e.g. padding/analysis)")
    for module in args.modules:
        if not (ROOT / module_path(module)).is_file():
            parser.error(f"{module_path(module)} does not exist")
    if args.survivors:
        equivalents = load_equivalents()
        for module in args.modules:
            for name in survivors(module, equivalents):
                print(name)
        return 0

    if args.show:
        show(args.modules)
        return 0

    # SIGTERM stops a run like Ctrl-C (a run in the background ignores SIGINT): the results so far are kept.
    signal.signal(signal.SIGTERM, _interrupt)
    mutmut_main = prepare_mutmut(args.modules)
    names: list[str] = []
    if args.retest or args.finish:
        equivalents = load_equivalents()
        names = [name for module in args.modules for name in survivors(module, equivalents)]
        if args.finish:
            names += [name for module in args.modules for name in unchecked(module)]
        if not names:
            print("no survivors to retest" if args.retest else "nothing left to run")
            return 0
    if args.only:
        patterns = [
            f"{module_key(module)}.{_mutant_stem(function)}__mutmut_*"
            for module in args.modules
            for function in args.only
        ]
        names = [
            name for name in names if any(fnmatch.fnmatch(name, pattern) for pattern in patterns)
        ] or patterns
    try:
        mutmut_main._run(names, args.jobs)
    finally:
        save_results(args.modules)
    return 0


if __name__ == "__main__":
    sys.exit(main())
