"""96-well plate geometry: well names, inner-60 selection."""

from __future__ import annotations

import re

ROWS = "ABCDEFGH"
N_COLS = 12
INNER_ROWS = "BCDEFG"
INNER_COLS = tuple(range(2, 12))
_WELL_RE = re.compile(r"^([A-Ha-h])0?([1-9]|1[0-2])$")


def parse_well(name: str) -> tuple[str, int]:
    """Return (row letter, column number) of a well name such as ``B07`` or ``b7``.

    Raises ValueError for names outside a 96-well plate (rows A-H, columns 1-12).
    """
    m = _WELL_RE.match(str(name).strip())
    if m is None:
        raise ValueError(f"{name!r} is not a well of a 96-well plate (rows A-H, columns 1-12)")
    return m.group(1).upper(), int(m.group(2))


def normalize_well(name: str) -> str:
    """Canonical zero-padded well name, e.g. ``b7`` -> ``B07``."""
    row, col = parse_well(name)
    return f"{row}{col:02d}"


def is_inner(name: str) -> bool:
    """True for the 60 inner wells (rows B-G, columns 2-11)."""
    row, col = parse_well(name)
    return row in INNER_ROWS and col in INNER_COLS


def inner_wells() -> list[str]:
    """The 60 inner wells in row-major order."""
    return [f"{r}{c:02d}" for r in INNER_ROWS for c in INNER_COLS]


def all_wells() -> list[str]:
    """All 96 wells in row-major order."""
    return [f"{r}{c:02d}" for r in ROWS for c in range(1, N_COLS + 1)]


def well_index(name: str) -> tuple[int, int]:
    """Zero-based (row, column) indices of a well, for plate heatmaps."""
    row, col = parse_well(name)
    return ROWS.index(row), col - 1
