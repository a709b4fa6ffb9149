"""Procedural scenes, the dataparser round trip and its bad-input handling."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from instance_nerf.data.dataparser import InstanceDataParserConfig
from instance_nerf.data.dataset import InstanceDataset, load_instance_mask, save_instance_mask
from instance_nerf.data.noisy import morph, perturb_view
from instance_nerf.data.synth import SynthConfig, camera_rays, generate, look_at


def test_synth_outputs_are_exact(tiny_scene):
    meta = json.loads((tiny_scene / "transforms.json").read_text())
    inst = json.loads((tiny_scene / "instances.json").read_text())
    assert len(meta["frames"]) == 6 and inst["num_instances"] == 4
    f0 = meta["frames"][0]
    ids = load_instance_mask(tiny_scene / f0["instance_file_path"])
    sem = load_instance_mask(tiny_scene / f0["semantic_file_path"])
    depth = np.load(tiny_scene / f0["depth_file_path"])
    assert ids.shape == sem.shape == depth.shape == (24, 24)
    cls = {i["id"]: i["class_id"] for i in inst["instances"]}
    assert np.array_equal(np.vectorize(cls.get)(ids), sem)  # semantic = class of instance
    # depth is exact: re-project a floor pixel (z = 0 plane) and check it lies on the floor
    c2w = np.array(f0["transform_matrix"])
    o, d = camera_rays(c2w, 24, 24, meta["fl_x"])
    pts = o + d * depth.reshape(-1, 1)
    on_geom = depth.reshape(-1) > 0
    assert on_geom.mean() > 0.5
    z = pts[on_geom, 2]
    assert z.min() >= -0.05 - 1e-6 and z.max() <= 1.0 + 1e-6
    grid = np.load(tiny_scene / "scene.npz")
    assert set(np.unique(grid["instance_grid"])) <= {-1, 0, 1, 2, 3}
    assert grid["aabbs"].shape == (3, 6)


def test_look_at_convention():
    c2w = look_at(np.array([0.0, -3.0, 0.0]), np.zeros(3))
    o, d = camera_rays(c2w, 3, 3, 1.0)
    assert np.allclose(d[4], [0, 1, 0])  # centre pixel looks at the target
    assert d[1][2] > 0  # top row looks up (world z-up)


def test_noisy_masks_permute_and_perturb():
    rng = np.random.default_rng(0)
    ids = np.zeros((32, 32), dtype=np.int64)
    ids[4:14, 4:14], ids[18:28, 18:28] = 1, 2
    noisy, mapping = perturb_view(ids, rng, p_drop=0.0, p_blob=1.0)
    assert set(mapping.values()) == {1, 2, -1}
    for nid, gid in mapping.items():
        if gid > 0:
            inter = ((noisy == nid) & (ids == gid)).sum()
            assert inter / (ids == gid).sum() > 0.5
    m = np.zeros((7, 7), bool)
    m[3, 3] = True
    assert morph(m, 1).sum() == 9 and morph(morph(m, 1), -1).sum() == 1


def test_mask_png_roundtrip_and_ignore(tmp_path):
    ids = np.array([[0, 1, -1], [3, 300, 2]])
    save_instance_mask(tmp_path / "m.png", ids)  # id 300 forces 16-bit
    assert np.array_equal(load_instance_mask(tmp_path / "m.png"), ids)
    save_instance_mask(tmp_path / "s.png", ids.clip(max=5))
    assert Image.open(tmp_path / "s.png").mode == "L"
    assert np.array_equal(load_instance_mask(tmp_path / "s.png"), ids.clip(max=5))


def test_dataparser_roundtrip(tiny_scene):
    parser = InstanceDataParserConfig(data=tiny_scene).setup()
    train = parser.get_dataparser_outputs("train")
    test = parser.get_dataparser_outputs("test")
    assert len(train.image_filenames) == 4 and len(test.image_filenames) == 2
    assert train.metadata["num_instances"] == 4
    meta = json.loads((tiny_scene / "transforms.json").read_text())
    first_train = next(f for f in meta["frames"] if f["split"] == "train")
    assert np.allclose(
        train.cameras.camera_to_worlds[0].numpy(), np.array(first_train["transform_matrix"])[:3]
    )
    assert float(train.cameras.fx[0]) == pytest.approx(meta["fl_x"])
    ds = InstanceDataset(train)
    item = ds[0]
    gt = load_instance_mask(tiny_scene / first_train["instance_file_path"])
    assert item["instance"].shape == (24, 24, 1)
    assert np.array_equal(item["instance"][..., 0].numpy(), gt)
    assert item["image"].shape == (24, 24, 3)


def _copy(scene, tmp_path):
    dst = tmp_path / "scene"
    shutil.copytree(scene, dst)
    return dst


def test_missing_images_skipped_with_one_warning(tiny_scene, tmp_path):
    scene = _copy(tiny_scene, tmp_path)
    meta = json.loads((scene / "transforms.json").read_text())
    (scene / meta["frames"][1]["file_path"]).unlink()
    (scene / meta["frames"][2]["file_path"]).unlink()
    with pytest.warns(UserWarning, match="2 of 6 frames") as rec:
        out = InstanceDataParserConfig(data=scene).setup().get_dataparser_outputs("train")
    assert sum("does not exist" in str(w.message) for w in rec) == 1
    # frames 1 and 4 are the test split; deleting 1 and 2 leaves train frames 0, 3, 5
    assert [f.name for f in out.image_filenames] == [
        "frame_0000.png",
        "frame_0003.png",
        "frame_0005.png",
    ]


def test_missing_mask_trains_colour_only(tiny_scene, tmp_path):
    scene = _copy(tiny_scene, tmp_path)
    meta = json.loads((scene / "transforms.json").read_text())
    frame = next(f for f in meta["frames"] if f["split"] == "train")
    (scene / frame["instance_file_path"]).unlink()
    with pytest.warns(UserWarning, match="colour only"):
        out = InstanceDataParserConfig(data=scene).setup().get_dataparser_outputs("train")
    item = InstanceDataset(out)[0]
    assert (item["instance"] == -1).all()


def test_bad_inputs_give_clear_errors(tiny_scene, tmp_path):
    scene = _copy(tiny_scene, tmp_path)
    meta = json.loads((scene / "transforms.json").read_text())
    frame = next(f for f in meta["frames"] if f["split"] == "train")
    mask_path = scene / frame["instance_file_path"]
    # wrong size
    save_instance_mask(mask_path, np.zeros((10, 12), dtype=np.int64))
    with pytest.raises(ValueError, match=r"instance mask is 12x10 but image .* is 24x24"):
        InstanceDataParserConfig(data=scene).setup().get_dataparser_outputs("train")
    # id >= L
    save_instance_mask(mask_path, np.full((24, 24), 9, dtype=np.int64))
    out = InstanceDataParserConfig(data=scene).setup().get_dataparser_outputs("train")
    with pytest.raises(ValueError, match="instance id 9 >= num_instances 4"):
        InstanceDataset(out)[0]
    # empty scene
    (scene / "transforms.json").write_text(json.dumps({"fl_x": 10, "frames": []}))
    with pytest.raises(ValueError, match="empty scene"):
        InstanceDataParserConfig(data=scene).setup().get_dataparser_outputs("train")
    with pytest.raises(FileNotFoundError, match="transforms.json"):
        InstanceDataParserConfig(data=tmp_path / "nope").setup().get_dataparser_outputs("train")


def test_synth_rejects_empty_scene(tmp_path):
    with pytest.raises(ValueError, match="num_objects"):
        generate(tmp_path, SynthConfig(num_objects=0))


def _two_touching_objects():
    ids = np.zeros((16, 16), dtype=np.int64)
    ids[4:12, 2:8], ids[4:12, 8:14] = 1, 2
    return ids


def test_panoptic_noise_is_deterministic_and_invertible():
    from instance_nerf.data.noisy import panoptic_noise

    ids = _two_touching_objects()
    a = panoptic_noise(ids, {0: 0, 1: 1, 2: 2}, [1, 2, 3], np.random.default_rng([7, 0]))
    b = panoptic_noise(ids, {0: 0, 1: 1, 2: 2}, [1, 2, 3], np.random.default_rng([7, 0]))
    assert a[0].tobytes() == b[0].tobytes() and a[1] == b[1]
    seg, records, mapping = a
    assert {r["id"] for r in records} == set(np.unique(seg[seg > 0]).tolist()) == set(mapping)
    bg = [r["id"] for r in records if r["is_background"]]
    assert len(bg) == 1 and mapping[bg[0]] == 0


def test_panoptic_noise_drop_and_merge():
    from instance_nerf.data.noisy import panoptic_noise

    ids = _two_touching_objects()
    zero = dict(p_split=0, p_blob=0, p_class=0, radius=0)
    seg, records, _ = panoptic_noise(
        ids, {1: 1, 2: 1}, [1, 2], np.random.default_rng(0), p_drop=1, **zero
    )
    assert len(records) == 1 and records[0]["is_background"] and (seg == records[0]["id"]).all()
    seg, records, mapping = panoptic_noise(
        ids, {1: 1, 2: 1}, [1, 2], np.random.default_rng(0), p_drop=0, p_merge=1, **zero
    )
    things = [r["id"] for r in records if not r["is_background"]]
    assert len(things) == 1 and (seg[ids > 0] == things[0]).all()
