"""Noisy, per-view inconsistent masks: what an off-the-shelf 2D panoptic model would give."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from instance_nerf.data.io import save_instance_mask, write_json


def _shift_or(m: np.ndarray) -> np.ndarray:
    """3x3 binary dilation with numpy shifts."""
    p = np.pad(m, 1)
    h, w = m.shape
    return np.any([p[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)


def morph(mask: np.ndarray, steps: int) -> np.ndarray:
    """Dilate (steps > 0) or erode (steps < 0) a boolean mask by |steps| pixels."""
    out = mask.copy()
    for _ in range(abs(steps)):
        out = _shift_or(out) if steps > 0 else ~_shift_or(~out)
    return out


def perturb_view(
    ids: np.ndarray, rng: np.random.Generator, p_drop: float = 0.15, p_blob: float = 0.5
) -> tuple[np.ndarray, dict[int, int]]:
    """Erode/dilate, drop instances, add a false blob, then permute ids.

    Returns the noisy map and {noisy id: GT id (or -1 for a false blob)}.
    """
    h, w = ids.shape
    out = np.zeros_like(ids)
    source: dict[int, int] = {}
    present = [int(i) for i in np.unique(ids) if i > 0]
    for gid in present:
        if rng.random() < p_drop:
            continue
        m = morph(ids == gid, int(rng.integers(-2, 3)))
        out[m] = gid
        source[gid] = gid
    if rng.random() < p_blob:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, h / 6), rng.uniform(2, w / 6)
        yy, xx = np.mgrid[:h, :w]
        blob_id = max(present, default=0) + 1
        out[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = blob_id
        source[blob_id] = -1
    old = sorted(i for i in source if np.any(out == i))
    perm = rng.permutation(len(old)) + 1
    remap = np.zeros(max(old, default=0) + 1, dtype=np.int64)
    mapping = {}
    for o_id, n_id in zip(old, perm):
        remap[o_id] = n_id
        mapping[int(n_id)] = source[o_id]
    return remap[out], mapping


def write_noisy_masks(
    out: Path, views: list[np.ndarray], files: list[str], rng: np.random.Generator
) -> None:
    """Write ``instances_noisy/<stem>.png`` and ``instances_noisy/mapping.json``."""
    folder = Path(out) / "instances_noisy"
    folder.mkdir(parents=True, exist_ok=True)
    mappings = {}
    for ids, f in zip(views, files):
        noisy, mapping = perturb_view(ids, rng)
        stem = Path(f).stem
        save_instance_mask(folder / f"{stem}.png", noisy)
        mappings[stem] = {str(k): v for k, v in mapping.items()}
    write_json(folder / "mapping.json", mappings, indent=1)


# ---------------------------------------------------------------------------------------------- panoptic noise
SEVERITY = {
    "low": {
        "p_drop": 0.075,
        "radius": 1,
        "p_split": 0.05,
        "p_merge": 0.10,
        "p_blob": 0.25,
        "p_class": 0.1,
    },
    "medium": {
        "p_drop": 0.15,
        "radius": 2,
        "p_split": 0.10,
        "p_merge": 0.20,
        "p_blob": 0.5,
        "p_class": 0.2,
    },
    "high": {
        "p_drop": 0.30,
        "radius": 3,
        "p_split": 0.20,
        "p_merge": 0.40,
        "p_blob": 0.9,
        "p_class": 0.4,
    },
}


def _closest_touching_pair(segs: dict[int, np.ndarray]) -> tuple[int, int] | None:
    grown = {k: morph(m, 2) for k, m in segs.items()}
    best, pair = None, None
    keys = sorted(segs)
    for a_i, a in enumerate(keys):
        for b in keys[a_i + 1 :]:
            if not (grown[a] & grown[b]).any():
                continue
            ca = np.argwhere(segs[a]).mean(0)
            cb = np.argwhere(segs[b]).mean(0)
            dist = float(np.linalg.norm(ca - cb))
            if best is None or dist < best:
                best, pair = dist, (a, b)
    return pair


def panoptic_noise(
    ids: np.ndarray,
    id_to_class: dict[int, int],
    thing_classes: list[int],
    rng: np.random.Generator,
    severity: str = "medium",
    **overrides: float,
) -> tuple[np.ndarray, list[dict], dict[int, int]]:
    """What a 2D panoptic model might return for one view: (segment map, segment records, {segment: GT id}).

    Steps (spec §5): drop objects into the background, move boundaries by ±r px, split an object along a
    line through its centroid, merge the closest touching pair, add a false blob, flip classes, one
    background segment, permute the ids. Segment 0 is void; GT id −1 marks a false blob.
    """
    cfg = {**SEVERITY[severity], **overrides}
    h, w = ids.shape
    parts: list[tuple[np.ndarray, int, int]] = []  # (mask, gt id, class)
    background = ids == 0
    for gid in (int(i) for i in np.unique(ids) if i > 0):
        m = ids == gid
        if m.sum() >= 4 and rng.random() < cfg["p_drop"]:
            background |= m
            continue
        r = int(rng.integers(-cfg["radius"], cfg["radius"] + 1))
        m = morph(m, r)
        if not m.any():
            continue
        cls = id_to_class.get(gid, thing_classes[0])
        if rng.random() < cfg["p_split"] and m.sum() >= 8:
            cy, cx = np.argwhere(m).mean(0)
            angle = rng.uniform(0, np.pi)
            yy, xx = np.mgrid[:h, :w]
            side = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle) > 0
            parts += [(m & side, gid, cls), (m & ~side, gid, cls)]
        else:
            parts.append((m, gid, cls))
    if rng.random() < cfg["p_merge"] and len(parts) >= 2:
        pair = _closest_touching_pair({i: p[0] for i, p in enumerate(parts)})
        if pair is not None:
            a, b = pair
            big = a if parts[a][0].sum() >= parts[b][0].sum() else b
            merged = (parts[a][0] | parts[b][0], parts[big][1], parts[big][2])
            parts = [p for i, p in enumerate(parts) if i not in pair] + [merged]
    if rng.random() < cfg["p_blob"]:
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(2, h / 6), rng.uniform(2, w / 6)
        yy, xx = np.mgrid[:h, :w]
        blob = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
        parts.append((blob, -1, int(rng.choice(thing_classes))))
    seg = np.zeros((h, w), dtype=np.int64)
    n = len(parts) + 1
    perm = rng.permutation(n) + 1
    bg_id = int(perm[-1])
    seg[background] = bg_id
    records = [{"id": bg_id, "class_id": 0, "is_background": True, "score": 1.0}]
    mapping = {bg_id: 0}
    for (m, gid, cls), sid in zip(parts, perm[:-1]):
        if rng.random() < cfg["p_class"] and len(thing_classes) > 1:
            cls = int(rng.choice([c for c in thing_classes if c != cls]))
        seg[m] = sid
        records.append({"id": int(sid), "class_id": int(cls), "is_background": False, "score": 1.0})
        mapping[int(sid)] = gid
    # dilation may have overwritten parts of others; keep only segments that still own pixels
    present = set(np.unique(seg).tolist())
    records = [r for r in records if r["id"] in present]
    mapping = {k: v for k, v in mapping.items() if k in present}
    return seg, records, mapping


def write_noisy_panoptic(
    scene: Path, out: Path, seed: int, severity: str = "medium", **overrides: float
) -> dict:
    """Noisy panoptic masks of every view of a synthetic scene into ``out`` (+ ``mapping.json``)."""
    from instance_nerf.data.dataparser import read_instances_json
    from instance_nerf.data.io import load_instance_mask, read_json
    from instance_nerf.data.panoptic import write_panoptic
    from instance_nerf.data.primitives import CLASSES

    scene = Path(scene)
    frames = read_json(scene / "transforms.json")["frames"]
    id_to_class = read_instances_json(scene / "instances.json")["id_to_class"]
    things = list(range(1, len(CLASSES)))
    views, mappings = {}, {}
    for v, frame in enumerate(frames):
        stem = Path(frame["file_path"]).stem
        ids = load_instance_mask(scene / "instances" / f"{stem}.png")
        seg, recs, mapping = panoptic_noise(
            ids, id_to_class, things, np.random.default_rng([seed, v]), severity, **overrides
        )
        views[stem] = (seg, recs)
        mappings[stem] = {str(k): int(g) for k, g in mapping.items()}
    write_panoptic(out, views)
    write_json(Path(out) / "mapping.json", mappings, indent=1)
    return {"out": str(out), "views": len(views), "severity": severity}
