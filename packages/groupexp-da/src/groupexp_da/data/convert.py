"""``convert``: mmdet3d's own dataset converters, made callable from an installed package.

mmdet3d ships its converters under ``mmdet3d/.mim/tools`` (importable only with that folder on
``sys.path``). This module puts it there, lays out a writable work copy of the dataset root
(symlinks to the read-only originals; KITTI's reduced point clouds are written into it), adds an
empty ``test`` split when the dataset has none, and runs the converter plus mmdet3d's
``update_pkl_infos`` so the result is the v2 info layout the configs read.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from groupexp_da.data.io import GroupExpError, load_infos


def mmdet3d_tools():
    """``(kitti_converter, nuscenes_converter, update_infos_to_v2)`` from mmdet3d's .mim."""
    import mmdet3d

    mim = Path(mmdet3d.__file__).parent / ".mim"
    if not (mim / "tools" / "dataset_converters").is_dir():
        raise GroupExpError(f"{mim}/tools: mmdet3d's dataset converters are not installed")
    if str(mim) not in sys.path:
        sys.path.insert(0, str(mim))
    mods = {}
    for name in ("kitti_converter", "update_infos_to_v2"):
        mods[name] = importlib.import_module(f"tools.dataset_converters.{name}")
    return mods


def _mirror(root: Path, out: Path, entries: list[str]) -> None:
    for e in entries:
        src, dst = root / e, out / e
        if not src.exists() or dst.exists() or dst.is_symlink():
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        dst.symlink_to(src.resolve(), target_is_directory=src.is_dir())


def convert_kitti(root: str | Path, out: str | Path, prefix: str = "kitti") -> dict[str, Path]:
    """KITTI object layout (``training/{velodyne,calib,label_2,image_2}``, ``ImageSets``) →
    ``out/kitti_infos_{train,val,trainval}.pkl`` (v2) and ``out/training/velodyne_reduced``.
    A missing ``testing/`` split or ``ImageSets/test.txt`` is skipped."""
    root, out = Path(root), Path(out)
    for need in (
        "training/velodyne",
        "training/calib",
        "training/label_2",
        "ImageSets/train.txt",
        "ImageSets/val.txt",
    ):
        if not (root / need).exists():
            raise GroupExpError(f"{root / need}: missing (not a KITTI object root)")
    out.mkdir(parents=True, exist_ok=True)
    _mirror(
        root,
        out,
        [
            "training/velodyne",
            "training/calib",
            "training/label_2",
            "training/image_2",
            "training/planes",
            "testing",
        ],
    )
    sets = out / "ImageSets"
    sets.mkdir(exist_ok=True)
    for split in ("train", "val", "trainval", "test"):
        src = root / "ImageSets" / f"{split}.txt"
        text = src.read_text() if src.is_file() else ""
        (sets / f"{split}.txt").write_text(text)
    has_test = (root / "testing").is_dir() and bool((sets / "test.txt").read_text().strip())
    if not has_test:
        (sets / "test.txt").write_text("")
    (out / "training" / "velodyne_reduced").mkdir(parents=True, exist_ok=True)
    tools = mmdet3d_tools()
    kc, up = tools["kitti_converter"], tools["update_infos_to_v2"]
    kc.create_kitti_info_file(str(out), prefix, save_path=str(out), relative_path=True)
    splits = ["train", "val", "trainval"] + (["test"] if has_test else [])
    for split in ("train", "val") + (("test",) if has_test else ()):
        kc._create_reduced_point_cloud(
            str(out),
            str(out / f"{prefix}_infos_{split}.pkl"),
            save_path=str(
                out / ("training" if split != "test" else "testing") / "velodyne_reduced"
            ),
        )
    if not has_test:
        (out / f"{prefix}_infos_test.pkl").unlink(missing_ok=True)
    paths = {}
    for split in splits:
        pkl = out / f"{prefix}_infos_{split}.pkl"
        up.update_pkl_infos("kitti", out_dir=str(out), pkl_path=str(pkl))
        load_infos(pkl)  # v2 now (a dict with data_list), or a clear error
        paths[split] = pkl
    return paths


def convert_nuscenes(
    root: str | Path,
    out: str | Path,
    version: str = "v1.0-trainval",
    max_sweeps: int = 10,
    prefix: str = "nuscenes",
) -> dict[str, Path]:
    """nuScenes (``v1.0-*`` tables + ``samples/``; needs nuscenes-devkit) → v2 info pkls."""
    root, out = Path(root), Path(out)
    if not (root / version).is_dir():
        raise GroupExpError(f"{root / version}: missing (nuScenes tables of version {version})")
    tools = mmdet3d_tools()
    nc = importlib.import_module("tools.dataset_converters.nuscenes_converter")
    out.mkdir(parents=True, exist_ok=True)
    _mirror(root, out, [version, "samples", "sweeps", "maps"])
    nc.create_nuscenes_infos(str(out), prefix, version=version, max_sweeps=max_sweeps)
    splits = ["test"] if version.endswith("test") else ["train", "val"]
    paths = {}
    for split in splits:
        pkl = out / f"{prefix}_infos_{split}.pkl"
        tools["update_infos_to_v2"].update_pkl_infos(
            "nuscenes", out_dir=str(out), pkl_path=str(pkl)
        )
        load_infos(pkl)
        paths[split] = pkl
    return paths


def convert_waymo(root: str | Path, out: str | Path, prefix: str = "waymo") -> dict[str, Path]:
    """Waymo already in mmdet3d's kitti_format: old-format info pkls under ``root`` → v2 infos
    in ``out`` (the tfrecord → kitti_format step needs TensorFlow and the Waymo SDK and is not
    run here)."""
    root, out = Path(root), Path(out)
    tools = mmdet3d_tools()
    out.mkdir(parents=True, exist_ok=True)
    _mirror(root, out, ["training", "testing", f"{prefix}_gt_database"])
    paths = {}
    for split in ("train", "val", "test"):
        pkl = root / f"{prefix}_infos_{split}.pkl"
        if not pkl.is_file():
            continue
        try:
            load_infos(pkl)
            already_v2 = True
        except GroupExpError:
            already_v2 = False
        if already_v2:
            target = out / pkl.name
            if not target.exists():
                target.symlink_to(pkl.resolve())
        else:
            tools["update_infos_to_v2"].update_pkl_infos(
                "waymo", out_dir=str(out), pkl_path=str(pkl)
            )
        load_infos(out / pkl.name)
        paths[split] = out / pkl.name
    if not paths:
        raise GroupExpError(
            f"{root}: no {prefix}_infos_{{train,val,test}}.pkl (run mmdet3d's "
            "waymo tfrecord converter first)"
        )
    return paths


CONVERTERS = {"kitti": convert_kitti, "nuscenes": convert_nuscenes, "waymo": convert_waymo}


def convert(dataset: str, root: str | Path, out: str | Path, **kw) -> dict[str, Path]:
    if dataset not in CONVERTERS:
        raise GroupExpError(f"convert: unknown dataset {dataset!r} ({', '.join(CONVERTERS)})")
    if not Path(root).is_dir():
        raise GroupExpError(f"{root}: dataset root not found")
    os.makedirs(out, exist_ok=True)
    return CONVERTERS[dataset](root, out, **kw)
