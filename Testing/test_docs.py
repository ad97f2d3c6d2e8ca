"""The documentation stays true: short README, no dead link, every page in the nav, CLI reference = parser.

MkDocs builds the site in CI (``mkdocs build --strict``); these checks need only the standard library and
the package, so a broken link or a drifting option list fails the ordinary test run too, with the file and
the link named. The build itself is tested here when MkDocs is installed.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
MKDOCS_YML = ROOT / "mkdocs.yml"
HOOK = DOCS / "hooks" / "cli_reference.py"
CLI_PAGE = DOCS / "reference" / "cli.md"

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
OPTION = re.compile(r"(?<![\w-])(--?[a-zA-Z][\w-]*)")
COMMAND_LINE = re.compile(r"ct-affine-register\s+(\w+)")
REPO_PATH = re.compile(
    r"(?<![\w/.-])((?:CTAffineRegister|Testing|Resources)/[\w./-]*\w\.(?:py|png|ui|json|md))"
)


def _pages() -> list[Path]:
    """Every Markdown page of the site (the hook folder holds code, not pages)."""
    return sorted(path for path in DOCS.rglob("*.md") if "hooks" not in path.relative_to(DOCS).parts)


def _markdown_files() -> list[Path]:
    return [README, ROOT / "Testing" / "benchmarks" / "README.md", *_pages()]


def _prose_lines(text: str, keep_code: bool = False) -> list[str]:
    """Lines outside fenced code blocks, inline code removed unless kept (a link shown as code is not a
    link)."""
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            lines.append(line if keep_code else re.sub(r"`[^`]*`", "", line))
    return lines


def _code_lines(text: str) -> list[str]:
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
            continue
        if in_code:
            lines.append(line)
    return lines


def _slug(heading: str) -> str:
    """The anchor Python-Markdown's toc (MkDocs) and, for these headings, GitHub give a heading."""
    text = re.sub(r"`|\*|_(?=\w)|\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _anchors(path: Path) -> set[str]:
    return {
        _slug(match.group(1))
        for line in _prose_lines(path.read_text(encoding="utf-8"), keep_code=True)
        if (match := re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line))
    }


def _load_hook():
    spec = importlib.util.spec_from_file_location("cli_reference", HOOK)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _nav_pages() -> list[str]:
    """Page paths named in mkdocs.yml's nav (``- Title: page.md`` or ``- page.md``), in order."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = text[text.index("\nnav:") :]
    return re.findall(r"^\s*-\s+(?:[^:\n]+:\s+)?([\w./-]+\.md)\s*$", nav, flags=re.MULTILINE)


def _parser_options(parser: argparse.ArgumentParser) -> set[str]:
    return {
        flag
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
        for flag in action.option_strings
    }


def _documented_options(markdown: str) -> dict[str, set[str]]:
    """Options in the generated reference's tables, by command (``""`` for the top-level parser)."""
    found: dict[str, set[str]] = {}
    command = None
    for line in markdown.splitlines():
        heading = re.match(r"###\s+`ct-affine-register\s*(\w*)`", line)
        if heading:
            command = heading.group(1)
            found[command] = set()
        elif command is not None and line.startswith("| `"):
            first_cell = line.split("|")[1]
            found[command] |= {flag for flag in re.findall(r"`([^`]+)`", first_cell) if flag.startswith("-")}
    return found


def test_readme_is_at_most_200_lines():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move the details to docs/"


def test_readme_keeps_the_two_setup_commands():
    """The demo and the test command of a fresh clone, exactly as .ci/run and users run them."""
    text = README.read_text(encoding="utf-8")
    demo = (
        "python3 -m venv .venv && .venv/bin/pip install -q . "
        "&& .venv/bin/ct-affine-register demo --out demo-output"
    )
    assert demo in text
    test_command = "python -m pytest -q -n 2 --dist loadfile"
    assert (
        'python3 -m venv .venv && .venv/bin/pip install -q -e ".[test,dask]" && .venv/bin/' + test_command
        in text
    )
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install --quiet -e ".[test,dask,docs]"' in ci
    assert f"\n{test_command}\n" in ci  # the same command, not a narrower one


def test_every_relative_link_points_to_an_existing_file_and_heading():
    dead = []
    for path in _markdown_files():
        for line in _prose_lines(path.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                file_part, _, anchor = target.partition("#")
                linked = (path.parent / file_part).resolve() if file_part else path
                where = f"{path.relative_to(ROOT)}: {target}"
                if not linked.exists():
                    dead.append(f"{where} (no such file)")
                elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
                    dead.append(f"{where} (no heading #{anchor})")
    assert not dead, "dead links:\n" + "\n".join(dead)


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_pages()
    on_disk = {path.relative_to(DOCS).as_posix() for path in _pages()}
    assert len(nav) == len(set(nav)), "a page is in mkdocs.yml's nav twice"
    assert on_disk - set(nav) == set(), "pages missing from mkdocs.yml's nav"
    assert set(nav) - on_disk == set(), "nav entries without a page"


def test_repository_paths_named_in_the_docs_exist():
    """A file the docs send a reader to (a script, a test, a picture) is still there."""
    missing = [
        f"{path.relative_to(ROOT)}: {name}"
        for path in _markdown_files()
        for name in REPO_PATH.findall(path.read_text(encoding="utf-8"))
        if not (ROOT / name).exists()
    ]
    assert not missing, "paths named in the docs that do not exist:\n" + "\n".join(missing)


def test_pictures_in_the_site_are_copies_of_the_drawn_ones():
    """The site cannot show files outside docs/, so it holds copies; a redrawn picture must be copied."""
    copies = sorted((DOCS / "assets").glob("*.png"))
    assert copies
    for copy in copies:
        original = ROOT / "Resources" / "Screenshots" / copy.name
        assert original.exists(), f"{copy.relative_to(ROOT)} has no original in Resources/Screenshots"
        assert copy.read_bytes() == original.read_bytes(), f"copy {original.relative_to(ROOT)} to {copy}"


def _table_problems(text: str) -> list[str]:
    """Tables (runs of lines starting with ``|`` outside code) whose first line is not a header row
    followed by a ``|---|`` separator: Markdown then shows the whole table as one paragraph of pipes."""
    problems, block, in_code = [], [], False
    for number, line in enumerate([*text.splitlines(), ""], start=1):
        if FENCE.match(line):
            in_code = not in_code
        if not in_code and line.lstrip().startswith("|"):
            block.append((number, line))
            continue
        if block:
            first, second = block[0][1], block[1][1] if len(block) > 1 else ""
            if TABLE_SEPARATOR.match(first) or not TABLE_SEPARATOR.match(second):
                problems.append(f"line {block[0][0]}: {first.strip()[:60]}")
            block = []
    return problems


TABLE_SEPARATOR = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")


def test_every_table_has_a_header_row():
    broken = [
        f"{path.relative_to(ROOT)}: {problem}"
        for path in _markdown_files()
        for problem in _table_problems(path.read_text(encoding="utf-8"))
    ]
    assert not broken, "tables without a header row and separator:\n" + "\n".join(broken)


def test_a_table_without_its_header_row_is_caught():
    """The check above can fail: a table that starts at its separator is named."""
    good = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert _table_problems(good) == []
    assert _table_problems("## T\n\n|---|---|\n| 1 | 2 |\n") == ["line 3: |---|---|"]


def test_generated_cli_reference_documents_exactly_the_parsers_options():
    hook = _load_hook()
    parser = hook.find_parser()
    documented = _documented_options(hook.render_cli_reference(parser))
    expected = {"": _parser_options(parser)}
    expected.update({name: _parser_options(sub) for name, sub in hook.subcommands(parser).items()})
    assert set(expected) >= {"inspect", "register", "check", "apply", "demo"}
    assert documented == expected


def test_generated_cli_reference_catches_an_option_it_would_leave_out():
    """The comparison above can fail: an option added to a parser shows up in the generated tables."""
    hook = _load_hook()
    parser = hook.find_parser()
    hook.subcommands(parser)["demo"].add_argument("--made-up-option", help="only in this test")
    demo = _documented_options(hook.render_cli_reference(parser))["demo"]
    assert "--made-up-option" in demo


def test_cli_page_receives_the_generated_tables():
    hook = _load_hook()
    assert hook.MARKER in CLI_PAGE.read_text(encoding="utf-8")
    assert hook.PAGE == CLI_PAGE.relative_to(DOCS).as_posix()
    assert "docs/hooks/cli_reference.py" in MKDOCS_YML.read_text(encoding="utf-8")


def test_command_lines_in_the_docs_use_only_real_options():
    """Hand-written ``ct-affine-register CMD ...`` lines (and their indented continuations) in code blocks
    name options that CMD's parser has."""
    hook = _load_hook()
    parser = hook.find_parser()
    known = {name: _parser_options(sub) | {"-h", "--help"} for name, sub in hook.subcommands(parser).items()}
    wrong = []
    for path in _markdown_files():
        command = None
        for line in _code_lines(path.read_text(encoding="utf-8")):
            match = COMMAND_LINE.search(line)
            if match and match.group(1) in known:
                command = match.group(1)
                line = line[match.end() :]
            elif not (command and line[:1].isspace()):
                command = None
            if command:
                flags = OPTION.findall(line.split("#", 1)[0])
                wrong += [
                    f"{path.relative_to(ROOT)}: {command} {flag}"
                    for flag in flags
                    if flag not in known[command]
                ]
    assert not wrong, "options the parser does not have:\n" + "\n".join(wrong)


def test_docs_import_only_names_the_package_exports():
    """The docs teach ``from CTAffineRegisterLib import ...``: each such name is in the root's ``__all__``
    (or is the lazily loaded Slicer entry). Until the root declares ``__all__`` there is nothing to hold
    the docs to."""
    import CTAffineRegisterLib

    exported = getattr(CTAffineRegisterLib, "__all__", None)
    if exported is None:
        pytest.skip("CTAffineRegisterLib has no __all__ yet")
    taught = set()
    for path in _markdown_files():
        text = path.read_text(encoding="utf-8")
        code = "\n".join(_code_lines(text))
        for names in re.findall(r"from CTAffineRegisterLib import (\([^)]*\)|[^\n]+)", code):
            names = re.sub(r"#.*", "", names).strip("() \n")
            taught |= {name.strip() for name in names.split(",") if name.strip()}
        assert "from CTAffineRegisterLib." not in code, f"{path.relative_to(ROOT)} teaches a module path"
    missing = sorted(taught - set(exported) - {"register_volume_nodes"})
    assert not missing, (
        f"the docs import these from CTAffineRegisterLib, which does not export them: {missing}"
    )


def test_site_builds_strictly():
    """What .ci/run does: MkDocs turns every warning (dead link, page outside the nav) into a failure."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    import os
    import tempfile

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "CTAffineRegister"), *sys.path]))
    with tempfile.TemporaryDirectory() as site:
        result = subprocess.run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", site],
            cwd=ROOT,
            env=env,
            capture_output=True,
            encoding="utf-8",  # MkDocs prints UTF-8 whatever the locale (CI's may be ASCII)
            errors="replace",
        )
        assert result.returncode == 0, result.stderr[-3000:]
        cli_page = (Path(site) / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    assert "--moving-labels" in cli_page and "<!-- cli-options -->" not in cli_page
