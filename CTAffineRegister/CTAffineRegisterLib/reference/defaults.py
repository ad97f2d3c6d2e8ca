"""The reference command's defaults, in a module of their own: the command line's parser (and its
``--help``) reads them without loading the registration behind the ranking."""

from __future__ import annotations

# Sample scans registered onto every candidate when the user names no number.
DEFAULT_SAMPLE_SIZE = 12
# "ranking": scans read at about 6 mm, two levels, no last stage; "full": register's own settings.
QUALITIES = ("ranking", "full")
