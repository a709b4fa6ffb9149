"""Split determinism, stratification and duplicate handling."""

from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
from PIL import Image

from bus_classify.data.io import write_csv
from bus_classify.data.sources import discover
from bus_classify.data.split import duplicate_groups, make_split, phash, read_csv


def test_phash_near_duplicates_close_and_distinct_far(busi_dir):
    a = Image.open(busi_dir / "benign" / "benign (1).png").convert("RGB")
    b = a.resize((60, 60)).resize(a.size)  # resampled copy
    c = Image.open(busi_dir / "normal" / "normal (1).png").convert("RGB")
    ha, hb, hc = phash(a), phash(b), phash(c)
    assert ha.shape == (64,)
    assert (ha != hb).sum() <= 6
    assert (ha != hc).sum() > 12


def test_duplicate_groups_union_find():
    h = np.zeros((5, 64), bool)
    h[1, :3] = True  # 3 bits from 0 -> same group
    h[2, :20] = True  # far
    h[3] = h[2]
    h[3, 63] = True  # close to 2
    h[4, 30:] = True
    g = duplicate_groups(h, max_distance=6)
    assert g[0] == g[1] and g[2] == g[3]
    assert len({g[0], g[2], g[4]}) == 3


def test_split_deterministic_stratified_no_leak(busi_dir, tmp_path):
    samples = discover(busi_dir)
    rows1, rep = make_split(samples, seed=3)
    rows2, _ = make_split(list(reversed(samples)), seed=3)
    assert [(r["path"], r["split"]) for r in rows1] == [(r["path"], r["split"]) for r in rows2]
    # the 3 exact duplicates written by synth are found, grouped, and never split apart
    assert len(rep.duplicate_groups) >= 3
    by_group: dict[int, set] = {}
    for r in rows1:
        by_group.setdefault(r["dup_group"], set()).add(r["split"])
    assert all(len(s) == 1 for s in by_group.values())
    assert not rep.leaks
    # roughly 60/20/20 per class
    for cls in ("benign", "malignant", "normal"):
        c = Counter(r["split"] for r in rows1 if r["source_class"] == cls)
        n = sum(c.values())
        assert abs(c["train"] - 0.6 * n) <= 2 and abs(c["test"] - 0.2 * n) <= 2
    out = write_csv(tmp_path / "s.csv", rows1)
    back = read_csv(out)
    assert [r["path"] for r in back] == [r["path"] for r in rows1]
    assert back[0]["label"] in (0, 1)


def test_split_skips_unreadable_and_reports_leaks(busi_dir, tmp_path):
    root = tmp_path / "d"
    shutil.copytree(busi_dir, root)
    (root / "benign" / "benign (999).png").write_bytes(b"\x89PNG garbage")
    rows, rep = make_split(discover(root), seed=0)
    assert len(rep.skipped) == 1 and "benign (999).png" in rep.skipped[0]
    assert all("999" not in r["path"] for r in rows)
    # split-folder layout with a duplicate planted across train and test -> a reported leak
    s = tmp_path / "s"
    src = sorted((busi_dir / "benign").glob("benign (?).png"))
    for split in ("train", "test"):
        (s / split / "lump").mkdir(parents=True)
        (s / split / "no_lump").mkdir(parents=True)
        shutil.copy(sorted((busi_dir / "normal").glob("normal (?).png"))[0], s / split / "no_lump")
    shutil.copy(src[0], s / "train" / "lump" / "a.png")
    shutil.copy(src[0], s / "test" / "lump" / "b.png")
    shutil.copy(src[1], s / "test" / "lump" / "c.png")
    rows, rep = make_split(discover(s))
    assert {r["split"] for r in rows} == {"train", "test"}
    assert any(
        any(p.endswith("a.png") for p in g) and any(p.endswith("b.png") for p in g)
        for g in rep.leaks
    )
