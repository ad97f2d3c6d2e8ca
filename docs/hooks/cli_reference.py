"""MkDocs hook: the CLI reference's option tables, generated from the argparse parser itself.

The reference page (``reference/cli.md``) holds the marker ``<!-- cli-options -->``; at build time this
hook replaces it with one section per sub-command (usage line, description, a table of every option),
rendered from the parser that ``ct-affine-register`` runs, so the page cannot drift from the code.
``Testing/test_docs.py`` imports :func:`render_cli_reference` and checks its output against the parser
without needing MkDocs. Plain Python (an MkDocs ``hooks:`` entry), no extra package.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import pkgutil
from typing import Optional

MARKER = "<!-- cli-options -->"
PAGE = "reference/cli.md"
# Names the parser factory has had or may have; imported through CTAffineRegisterLib.cli, which stays valid
# when cli becomes a package.
PARSER_FACTORIES = ("build_parser", "_parser", "parser")


def _cli_modules(cli):
    """``cli`` itself, then, when it is a package, its modules one by one (imported only if needed)."""
    yield cli
    for info in pkgutil.iter_modules(getattr(cli, "__path__", [])):
        yield importlib.import_module(f"{cli.__name__}.{info.name}")


def find_parser() -> argparse.ArgumentParser:
    """Build the ``ct-affine-register`` parser the way the command does.

    Returns:
        The top-level parser, with its sub-commands.

    Raises:
        ImportError: when ``CTAffineRegisterLib.cli`` has none of the known parser factories.
    """
    from CTAffineRegisterLib import cli

    for module in _cli_modules(cli):
        for name in PARSER_FACTORIES:
            factory = getattr(module, name, None)
            if callable(factory):
                parser = factory()
                if isinstance(parser, argparse.ArgumentParser):
                    return parser
    raise ImportError(
        f"CTAffineRegisterLib.cli has none of {', '.join(PARSER_FACTORIES)}: cannot document the CLI"
    )


def subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """The sub-command parsers by name, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The parser's arguments and options, without ``--help`` and sub-command actions."""
    return [
        action
        for action in parser._actions
        if not isinstance(action, (argparse._HelpAction, argparse._SubParsersAction))
    ]


def _cell(text: str) -> str:
    """One table cell: one line, no pipe to end the cell, no ``<word>`` taken for an HTML tag."""
    text = " ".join(str(text).split())
    return text.replace("|", "\\|").replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _value(action: argparse.Action) -> str:
    if action.nargs == 0:
        return ""
    if action.choices:
        return ", ".join(f"`{choice}`" for choice in action.choices)
    shown = action.metavar or action.dest.upper()
    if action.nargs in ("+", "*"):
        shown += " ..."
    return f"`{shown}`"


def _default(action: argparse.Action) -> str:
    if action.required:
        return "required"
    if action.nargs == 0 or action.default in (None, argparse.SUPPRESS):
        return ""
    return f"`{action.default}`"


def _usage(parser: argparse.ArgumentParser) -> str:
    parser.formatter_class = functools.partial(argparse.HelpFormatter, width=100)
    return parser.format_usage().strip()


def _help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return _cell(parser._get_formatter()._expand_help(action))


def _exclusive_groups(parser: argparse.ArgumentParser) -> list[str]:
    lines = []
    for group in parser._mutually_exclusive_groups:
        names = " / ".join(f"`{action.option_strings[0]}`" for action in group._group_actions)
        lines.append(f"{'Exactly' if group.required else 'At most'} one of {names}.")
    return lines


def _command_section(name: str, parser: argparse.ArgumentParser) -> list[str]:
    lines = [f"### `{parser.prog}`", "", "```text", _usage(parser), "```", ""]
    if parser.description:
        lines += [_cell(parser.description), ""]
    lines += ["| option | value | default | what |", "|---|---|---|---|"]
    for action in options(parser):
        names = (
            ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.metavar or action.dest}`"
        )
        lines.append(f"| {names} | {_value(action)} | {_default(action)} | {_help(parser, action)} |")
    lines.append("")
    lines += _exclusive_groups(parser)
    return lines


def render_cli_reference(parser: Optional[argparse.ArgumentParser] = None) -> str:
    """Markdown for every sub-command of ``ct-affine-register``: usage, description and option table.

    Args:
        parser: the top-level parser; by default the one the command builds (:func:`find_parser`).

    Returns:
        Markdown text, one ``###`` section per sub-command, top-level options first.
    """
    parser = parser or find_parser()
    lines = ["### `ct-affine-register`", "", "```text", _usage(parser), "```", ""]
    lines += ["| option | what |", "|---|---|"]
    for action in options(parser):
        lines.append(
            f"| {', '.join(f'`{flag}`' for flag in action.option_strings)} | {_help(parser, action)} |"
        )
    lines.append("")
    for name, subparser in subcommands(parser).items():
        lines += _command_section(name, subparser)
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs event: put the generated tables into the CLI reference page."""
    if page.file.src_uri != PAGE:
        return markdown
    if MARKER not in markdown:
        raise ValueError(f"{PAGE} lacks the marker {MARKER}: the CLI options would not be documented")
    return markdown.replace(MARKER, render_cli_reference())
