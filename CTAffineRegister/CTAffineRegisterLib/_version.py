"""The package version, in a module of its own: reports and the CLI read it without the package root."""

__version__ = "0.1.0"
