"""GroupEXP-DA."""

__version__ = "0.1.0"
