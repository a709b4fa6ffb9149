"""Compare groupexp-da's CPU KITTI AP with mmdet3d's ``kitti_eval`` (numba.cuda, GPU).

mmdet3d's ``evaluation/functional/kitti_utils/{eval,rotate_iou}.py`` are loaded straight
from their files (``--mmdet3d-root`` / ``--mmdet3d-wheel``, default: the installed mmdet3d
found without importing it), so the GPU side needs only numba + numpy, not mmcv.
Identical predictions go to both on (a) the real KITTI frame 000008 (if found) and
(b) synthetic KITTI-style frames with all three difficulties. Prints one JSON line.

``--device cpu`` runs mmdet3d's CUDA kernels in numba's CUDA simulator
(``NUMBA_ENABLE_CUDASIM=1``, slow: fewer frames by default).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pickle
import sys
import tempfile
import time
import types
import zipfile
from pathlib import Path

if "--device" in sys.argv and sys.argv[sys.argv.index("--device") + 1] == "cpu":
    os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")  # must precede the numba import

import numpy as np

from groupexp_da.eval.gt import camera_to_lidar
from groupexp_da.eval.kitti_ap import kitti_ap

SUB = "mmdet3d/evaluation/functional/kitti_utils"
L2C = np.array([[0, -1, 0, 0], [0, 0, -1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], np.float64)


def load_reference(root: str | None, wheel: str | None):
    # mmdet3d 1.4's kitti_eval calls np.row_stack, removed in numpy 2.x; the GPU image has
    # numpy 2, so alias it (same function) rather than editing mmdet3d's code.
    if not hasattr(np, "row_stack"):
        np.row_stack = np.vstack  # noqa: NPY201 (restores the alias mmdet3d calls)
    if wheel:
        tmp = Path(tempfile.mkdtemp())
        with zipfile.ZipFile(wheel) as z:
            for f in ("eval.py", "rotate_iou.py"):
                z.extract(f"{SUB}/{f}", tmp)
        folder = tmp / SUB
    elif root:
        folder = Path(root) / SUB
    else:
        spec = importlib.util.find_spec("mmdet3d")
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit("mmdet3d not found: pass --mmdet3d-root or --mmdet3d-wheel")
        folder = Path(list(spec.submodule_search_locations)[0]).parent / SUB
    pkg = types.ModuleType("ref_kitti_utils")
    pkg.__path__ = [str(folder)]
    sys.modules["ref_kitti_utils"] = pkg
    spec = importlib.util.spec_from_file_location("ref_kitti_utils.eval", folder / "eval.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["ref_kitti_utils.eval"] = mod
    spec.loader.exec_module(mod)
    return mod


def synth_annos(n: int, seed: int = 0):
    """KITTI camera-frame GT and detection annos (dicts as mmdet3d's kitti_eval wants)."""
    rng = np.random.default_rng(seed)
    gts, dts = [], []
    for _ in range(n):
        k = int(rng.integers(3, 15))
        loc = np.c_[rng.uniform(-20, 20, k), rng.uniform(1.4, 1.9, k), rng.uniform(4, 60, k)]
        dims = np.abs(rng.normal([3.9, 1.55, 1.6], [0.3, 0.1, 0.1], (k, 3)))  # l, h, w
        ry = rng.uniform(-np.pi, np.pi, k)
        top = rng.uniform(100, 200, k)
        height = 721.5 * dims[:, 1] / loc[:, 2]
        bbox = np.c_[rng.uniform(0, 1000, k), top, rng.uniform(0, 1000, k) + 50, top + height]
        names = rng.choice(["Car"] * 6 + ["Van", "Pedestrian", "DontCare"], k)
        gts.append(
            dict(
                name=names,
                truncated=rng.choice([0.0, 0.2, 0.4, 0.6], k),
                occluded=rng.integers(0, 4, k),
                alpha=np.full(k, -10.0),
                bbox=bbox,
                location=loc,
                dimensions=dims,
                rotation_y=ry,
            )
        )
        keep = rng.random(k) < 0.8
        m = int(keep.sum())
        dl = loc[keep] + rng.normal(0, [0.25, 0.08, 0.25], (m, 3))
        dd = dims[keep] * rng.normal(1, 0.05, (m, 3))
        dr = ry[keep] + rng.normal(0, 0.08, m)
        db = bbox[keep] + rng.normal(0, 3, (m, 4))
        f = int(rng.integers(0, 4))
        dl = np.vstack([dl, np.c_[rng.uniform(-20, 20, f), np.full(f, 1.6), rng.uniform(4, 60, f)]])
        dd = np.vstack([dd, np.tile([3.9, 1.55, 1.6], (f, 1))])
        dr = np.r_[dr, rng.uniform(-3, 3, f)]
        db = np.vstack(
            [
                db,
                np.c_[
                    np.zeros((f, 1)),
                    np.full((f, 1), 150.0),
                    np.full((f, 1), 80.0),
                    150 + rng.uniform(10, 90, (f, 1)),
                ],
            ]
        )
        mm = m + f
        dts.append(
            dict(
                name=np.array(["Car"] * mm),
                truncated=np.zeros(mm),
                occluded=np.zeros(mm),
                alpha=np.full(mm, -10.0),
                bbox=db,
                location=dl,
                dimensions=dd,
                rotation_y=dr,
                score=rng.uniform(0, 1, mm),
            )
        )
    return gts, dts


def fixture_annos(shared: Path):
    p = shared / "fixtures" / "lidar" / "kitti_000008.pkl"
    if not p.is_file():
        return [], [], None
    info = pickle.load(open(p, "rb"))["data_list"][0]
    names_of = {0: "Pedestrian", 1: "Cyclist", 2: "Car", -1: "DontCare"}
    inst = info["instances"]
    b3 = np.array([i["bbox_3d"] for i in inst])
    gt = dict(
        name=np.array([names_of.get(i["bbox_label_3d"], "Misc") for i in inst]),
        truncated=np.array([i["truncated"] for i in inst], float),
        occluded=np.array([i["occluded"] for i in inst]),
        alpha=np.array([i.get("alpha", -10.0) for i in inst], float),
        bbox=np.array([i["bbox"] for i in inst], float),
        location=b3[:, :3],
        dimensions=b3[:, 3:6],
        rotation_y=b3[:, 6],
    )
    rng = np.random.default_rng(8)
    dts = []
    # mmdet3d's GPU rotate_iou divides by zero on exactly parallel edges (NaN IoU for a
    # prediction identical to its GT), so every prediction gets a small pose/size change
    for noise in (0.02, 0.1, 0.3):
        car = gt["name"] == "Car"
        n = int(car.sum())
        dts.append(
            dict(
                name=np.array(["Car"] * n),
                truncated=np.zeros(n),
                occluded=np.zeros(n),
                alpha=np.full(n, -10.0),
                bbox=gt["bbox"][car],
                location=gt["location"][car] + rng.normal(0, noise, (n, 3)),
                dimensions=gt["dimensions"][car] * rng.normal(1, noise / 4, (n, 3)),
                rotation_y=gt["rotation_y"][car] + rng.normal(0, noise / 2 + 0.01, n),
                score=np.linspace(0.9, 0.4, n),
            )
        )
    l2c = np.array(info["images"]["CAM2"]["lidar2cam"], np.float64)
    return [gt] * len(dts), dts, l2c


def to_ours(annos, l2c, det: bool):
    out = []
    for a in annos:
        boxes = camera_to_lidar(np.c_[a["location"], a["dimensions"], a["rotation_y"]], l2c)
        f = {"boxes": boxes, "height": a["bbox"][:, 3] - a["bbox"][:, 1]}
        if det:
            f.update(scores=a["score"], names=a["name"])
        else:
            f.update(names=a["name"], occluded=a["occluded"], truncated=a["truncated"])
        out.append(f)
    return out


def compare(ref, gts, dts, l2c):
    t0 = time.perf_counter()
    _, theirs = ref.kitti_eval(gts, dts, ["Car"], eval_types=["bev", "3d"])
    t_ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    ours = kitti_ap(to_ours(gts, l2c, False), to_ours(dts, l2c, True))
    t_ours = time.perf_counter() - t0
    diffs = {}
    for kind in ("BEV", "3D"):
        for r in ("11", "40"):
            for d in ("easy", "moderate", "hard"):
                a = float(theirs[f"KITTI/Car_{kind}_AP{r}_{d}_strict"])
                b = ours[f"Car_{kind}_R{r}_{d}"]
                diffs[f"{kind}_R{r}_{d}"] = (round(a, 4), round(b, 4))
    err = max(abs(a - b) for a, b in diffs.values())
    return err, diffs, t_ref, t_ours


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cpu", "cuda"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--frames",
        type=int,
        default=None,
        help="synthetic frames (default 3769 on cuda, 150 on the CPU simulator)",
    )
    ap.add_argument("--mmdet3d-root")
    ap.add_argument("--mmdet3d-wheel")
    a = ap.parse_args(argv)
    ref = load_reference(a.mmdet3d_root, a.mmdet3d_wheel)
    shared = Path(
        os.environ.get("CV_SHARED_DIR", Path(__file__).resolve().parents[3].parent / "shared")
    )
    res = {}
    fg, fd, fl2c = fixture_annos(shared)
    if fg:
        for i, (g, d) in enumerate(zip(fg, fd)):
            err, diffs, _, _ = compare(ref, [g], [d], fl2c)
            res[f"kitti_000008_noise{i}"] = {"max_abs_diff": err, "ref_vs_ours": diffs}
    n = a.frames or (3769 if a.device == "cuda" else 150)
    g, d = synth_annos(20 if a.quick else n)
    err, diffs, t_ref, t_ours = compare(ref, g, d, L2C)
    res["synthetic"] = {
        "frames": len(g),
        "max_abs_diff": err,
        "ref_vs_ours": diffs,
        "mmdet3d_s": round(t_ref, 2),
        "ours_s": round(t_ours, 2),
    }
    worst = max(v["max_abs_diff"] for v in res.values())
    sim = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
    print(
        json.dumps(
            {
                "benchmark": "ap_vs_mmdet3d",
                "package": "groupexp-da",
                "device": a.device,
                "results": {
                    "cuda_simulator": sim,
                    "max_abs_diff": worst,
                    "equal_to_1e-3": worst <= 1e-3,
                    **res,
                },
            }
        )
    )


if __name__ == "__main__":
    main()
