"""Experiment metadata table: one row per (plate, well, day) image.

Folder layout (documented in the README)::

    DATA/
      layout.csv              # well -> treatment (optional ``plate`` column for per-plate layouts)
      plate_<id>/
        day_<d>/
          <well>.<tif|tiff|png|jpg|jpeg>     e.g. plate_1/day_10/B07.tif

``layout.csv`` columns: ``well, group, drug, concentration`` (+ optional ``plate``, ``condition``
and any extra columns such as ``true_efficacy``). ``group`` is one of ``untreated``,
``single_dose``, ``screening``. Combinations are written ``drug=A+B`` with
``concentration=1.0+0.5``. Alternatively a CSV with columns
``plate, well, day, group, drug, concentration, path`` can be given directly.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupShuffleSplit

from spheroid_rank.data.io import ImageReadError, SpheroidRankError, bit_depth
from spheroid_rank.data.plate import is_inner, normalize_well, parse_well

log = logging.getLogger(__name__)

GROUPS = ("untreated", "single_dose", "screening")
IMAGE_EXTS = (".tif", ".tiff", ".png", ".jpg", ".jpeg")
COLUMNS = ["plate", "well", "day", "group", "drug", "concentration", "condition", "path"]
_PLATE_RE = re.compile(r"^plate_(.+)$")
_DAY_RE = re.compile(r"^day_?(\d+)$")


class MetadataError(SpheroidRankError):
    """The experiment metadata is inconsistent; the message names the file or well."""


def condition_name(group: str, drug: str, concentration: str) -> str:
    """Readable condition label, e.g. ``untreated`` or ``A+B @ 1+0.5``."""
    if group == "untreated":
        return "untreated"
    drug = str(drug).strip() if isinstance(drug, str) or pd.notna(drug) else ""
    conc = str(concentration).strip() if pd.notna(concentration) else ""
    label = f"{drug} @ {conc}" if conc else drug
    return label if group == "screening" else f"{label} (single dose)"


def concentration_total(conc: str) -> float:
    """Sum of a ``1.0+0.5`` concentration string (NaN when empty)."""
    try:
        return float(sum(float(c) for c in str(conc).split("+")))
    except ValueError:
        return float("nan")


def _clean_well(value: str, where: str) -> str:
    try:
        return normalize_well(value)
    except ValueError as exc:
        raise MetadataError(f"{where}: {exc}") from exc


def read_layout(path: str | Path) -> pd.DataFrame:
    """Read and check a ``layout.csv``."""
    path = Path(path)
    if not path.is_file():
        raise MetadataError(f"{path}: layout file does not exist")
    lay = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"well", "group"} - set(lay.columns)
    if missing:
        raise MetadataError(f"{path}: missing column(s) {sorted(missing)}")
    for col in ("drug", "concentration", "plate"):
        if col not in lay.columns:
            lay[col] = ""
    lay["well"] = [_clean_well(w, f"{path} line {i + 2}") for i, w in enumerate(lay["well"])]
    bad = lay[~lay["group"].isin(GROUPS)]
    if len(bad):
        i = bad.index[0]
        raise MetadataError(f"{path} line {i + 2}: group {bad['group'].iloc[0]!r} not in {GROUPS}")
    dup = lay.duplicated(["plate", "well"], keep=False)
    if dup.any():
        raise MetadataError(f"{path}: well(s) listed twice: {sorted(set(lay.loc[dup, 'well']))}")
    if "condition" not in lay.columns or (lay["condition"] == "").all():
        lay["condition"] = [
            condition_name(g, d, c)
            for g, d, c in zip(lay["group"], lay["drug"], lay["concentration"])
        ]
    return lay


def scan_folder(root: str | Path) -> pd.DataFrame:
    """Images found under ``root/plate_<id>/day_<d>/<well>.<ext>``."""
    root = Path(root)
    if not root.is_dir():
        raise MetadataError(f"{root}: data folder does not exist")
    rows = []
    for pdir in sorted(p for p in root.iterdir() if p.is_dir()):
        pm = _PLATE_RE.match(pdir.name)
        if not pm:
            continue
        for ddir in sorted(p for p in pdir.iterdir() if p.is_dir()):
            dm = _DAY_RE.match(ddir.name)
            if not dm:
                continue
            for f in sorted(ddir.iterdir()):
                if f.suffix.lower() not in IMAGE_EXTS or f.name.startswith("."):
                    continue
                well = _clean_well(f.stem, str(f))
                rows.append(
                    {"plate": pm.group(1), "well": well, "day": int(dm.group(1)), "path": str(f)}
                )
    if not rows:
        raise MetadataError(f"{root}: no images found in plate_<id>/day_<d>/<well>.<ext>")
    return pd.DataFrame(rows)


def _merge_layout(images: pd.DataFrame, layout: pd.DataFrame, layout_path: Path) -> pd.DataFrame:
    per_plate = layout[layout["plate"] != ""]
    shared = layout[layout["plate"] == ""].drop(columns="plate")
    out = []
    for plate, grp in images.groupby("plate", sort=True):
        lay = per_plate[per_plate["plate"] == plate].drop(columns="plate")
        lay = lay if len(lay) else shared
        merged = grp.merge(lay, on="well", how="left", indicator=True)
        missing = merged[merged["_merge"] == "left_only"]
        if len(missing):
            raise MetadataError(
                f"{layout_path}: no treatment for plate {plate} well(s) "
                f"{sorted(set(missing['well']))[:10]} (e.g. {missing['path'].iloc[0]})"
            )
        out.append(merged.drop(columns="_merge"))
    return pd.concat(out, ignore_index=True)


def validate_table(
    table: pd.DataFrame,
    *,
    inner_only: bool = True,
    target_day: int | None = 10,
    on_missing: str = "error",
    check_images: bool = True,
    source: str = "metadata",
) -> pd.DataFrame:
    """Check a metadata table; return a cleaned copy sorted by plate, well, day.

    Errors (MetadataError) name the offending well or file: wells off the plate,
    duplicated (plate, well, day), unknown group, missing ``target_day`` image
    (``on_missing="exclude"`` drops the well with a log message instead), no untreated
    wells, unreadable images and mixed bit depths.
    """
    if on_missing not in ("error", "exclude"):
        raise ValueError("on_missing must be 'error' or 'exclude'")
    t = table.copy()
    need = {"plate", "well", "day", "group", "path"} - set(t.columns)
    if need:
        raise MetadataError(f"{source}: missing column(s) {sorted(need)}")
    for col in ("drug", "concentration"):
        if col not in t.columns:
            t[col] = ""
    t["drug"] = t["drug"].fillna("").astype(str)
    t["concentration"] = t["concentration"].fillna("").astype(str)
    t["plate"] = t["plate"].astype(str)
    t["well"] = [
        _clean_well(w, f"{source} (plate {p}, {path})")
        for w, p, path in zip(t["well"], t["plate"], t["path"])
    ]
    t["day"] = t["day"].astype(int)
    bad = t[~t["group"].isin(GROUPS)]
    if len(bad):
        raise MetadataError(
            f"{source}: plate {bad['plate'].iloc[0]} well {bad['well'].iloc[0]}: group "
            f"{bad['group'].iloc[0]!r} not in {GROUPS}"
        )
    if "condition" not in t.columns:
        t["condition"] = ""
    t["condition"] = [
        c if isinstance(c, str) and c else condition_name(g, d, k)
        for c, g, d, k in zip(t["condition"], t["group"], t["drug"], t["concentration"])
    ]
    dup = t.duplicated(["plate", "well", "day"], keep=False)
    if dup.any():
        d = t[dup].iloc[0]
        raise MetadataError(
            f"{source}: duplicated image for plate {d['plate']} well {d['well']} day {d['day']}: "
            + ", ".join(
                t.loc[
                    dup
                    & (t["plate"] == d["plate"])
                    & (t["well"] == d["well"])
                    & (t["day"] == d["day"]),
                    "path",
                ]
            )
        )
    if inner_only:
        outer = ~t["well"].map(is_inner)
        if outer.any():
            log.info(
                "inner-60 filter: excluded %d images of %d outer wells",
                int(outer.sum()),
                t.loc[outer, ["plate", "well"]].drop_duplicates().shape[0],
            )
        t = t[~outer]
    if target_day is not None:
        has = t.groupby(["plate", "well"])["day"].apply(lambda d: target_day in set(d))
        lacking = has[~has]
        if len(lacking):
            names = [f"plate {p} well {w}" for p, w in lacking.index[:10]]
            msg = f"{source}: no day-{target_day} image for {len(lacking)} well(s): {names}"
            if on_missing == "error":
                raise MetadataError(msg)
            log.warning("%s -> excluded", msg)
            keep = t.set_index(["plate", "well"]).index.isin(has[has].index)
            t = t[keep]
    if not (t["group"] == "untreated").any():
        raise MetadataError(f"{source}: no untreated wells; the temporal model needs them")
    if check_images:
        depths = {}
        for p in t["path"]:
            try:
                depths[p] = bit_depth(p)
            except ImageReadError as exc:
                raise MetadataError(str(exc)) from exc
        kinds = sorted(set(depths.values()))
        if len(kinds) > 1:
            ex = {k: next(p for p, v in depths.items() if v == k) for k in kinds}
            raise MetadataError(f"{source}: mixed bit depths {kinds}, e.g. {ex}")
    t["row"] = t["well"].map(lambda w: parse_well(w)[0])
    t["col"] = t["well"].map(lambda w: parse_well(w)[1])
    return t.sort_values(["plate", "well", "day"]).reset_index(drop=True)


def load_experiment(data: str | Path, **kwargs) -> pd.DataFrame:
    """Metadata table from a data folder (with ``layout.csv``) or a metadata CSV file."""
    data = Path(data)
    if data.is_file():
        t = pd.read_csv(
            data, dtype={"plate": str, "drug": str, "concentration": str}, keep_default_na=False
        )
        if "path" in t.columns:
            t["path"] = [str(p if Path(p).is_absolute() else data.parent / p) for p in t["path"]]
        return validate_table(t, source=str(data), **kwargs)
    layout_path = data / "layout.csv"
    images = scan_folder(data)
    layout = read_layout(layout_path)
    return validate_table(_merge_layout(images, layout, layout_path), source=str(data), **kwargs)


def attach_truth(meta: pd.DataFrame, data_dir: str | Path | None) -> pd.DataFrame:
    """Add the ``true_efficacy`` column of ``data_dir/layout.csv`` (synthetic data) by
    (plate, well); ``meta`` is returned unchanged when it has the column already, or when
    the layout has none."""
    if "true_efficacy" in meta.columns or data_dir is None:
        return meta
    lay = Path(data_dir) / "layout.csv"
    if not lay.is_file():
        raise MetadataError(f"{lay}: layout file does not exist")
    t = pd.read_csv(lay, dtype={"plate": str})
    if "true_efficacy" not in t.columns:
        return meta
    if "plate" not in t.columns or t["plate"].isna().all():
        return meta.merge(t[["well", "true_efficacy"]], on="well", how="left")
    return meta.merge(t[["plate", "well", "true_efficacy"]], on=["plate", "well"], how="left")


def probe_split(
    meta: pd.DataFrame, min_day: int, test_size: float = 0.4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, test) of images with day >= ``min_day``, split by well."""
    idx = np.flatnonzero(meta["day"].astype(int).to_numpy() >= min_day)
    groups = (meta["plate"].astype(str) + "/" + meta["well"]).to_numpy()[idx]
    tr, te = next(
        GroupShuffleSplit(1, test_size=test_size, random_state=seed).split(idx, groups=groups)
    )
    return idx[tr], idx[te]
