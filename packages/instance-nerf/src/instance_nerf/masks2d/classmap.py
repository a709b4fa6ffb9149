"""Map a 2D model's labels to the target classes by *name* (through ``config.id2label``), never by index."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from instance_nerf.data.io import InstanceNerfError, read_json


@dataclass
class ClassMap:
    """``name → class id`` for things, a set of background names, and the id for every other name (or None)."""

    mapping: dict[str, int]
    background: set[str]
    default: int | None = None

    def lookup(self, name: str) -> tuple[int, bool] | None:
        """(class id, is_background) for a label name; None when it maps to nothing."""
        key = name.strip().lower()
        if key in self.background:
            return 0, True
        if key in self.mapping:
            return self.mapping[key], False
        return (self.default, False) if self.default is not None else None

    def model_table(
        self, id2label: dict[int, str], source: str = "model"
    ) -> dict[int, tuple[int, bool]]:
        """Table for a model's label ids; an error when no label maps to a thing class."""
        table = {int(i): r for i, n in id2label.items() if (r := self.lookup(str(n))) is not None}
        if not any(not bg for _, bg in table.values()):
            raise InstanceNerfError(
                f"{source}: none of its {len(id2label)} labels maps to a target class "
                f"(e.g. {sorted(map(str, id2label.values()))[:3]}); check the class map"
            )
        return table


def load_class_map(name_or_path: str | Path = "coco_to_nyu40") -> ClassMap:
    """A bundled map by name (``coco_to_nyu40``) or a JSON file {map, background, default}."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.is_file():
        meta = read_json(path)
        source = str(path)
    else:
        try:
            text = (
                resources.files("instance_nerf.masks2d")
                .joinpath(f"{name_or_path}.json")
                .read_text()
            )
        except FileNotFoundError:
            raise InstanceNerfError(
                f"{name_or_path}: no such bundled class map (try coco_to_nyu40)"
            ) from None
        meta = json.loads(text)
        source = str(name_or_path)
    if "map" not in meta:
        raise InstanceNerfError(f"{source}: class map has no 'map' key")
    return ClassMap(
        {k.lower(): int(v) for k, v in meta["map"].items()},
        {b.lower() for b in meta.get("background", [])},
        meta.get("default"),
    )
