"""citeqa: cited, extractive question answering over a multilingual news corpus."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("citeqa")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
