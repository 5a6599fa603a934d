"""The collector's version (its own module, so nothing depends on the package ``__init__``)."""

__version__ = "0.1.0"
