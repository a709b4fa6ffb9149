import numpy as np
import pytest
from skimage import draw

from spheroid_rank.eval.morphology import feret_min, measure_image, shape_measures


@pytest.mark.parametrize("r", [15, 30, 60])
def test_disk_circularity_area_perimeter(r):
    m = np.zeros((200, 200), bool)
    rr, cc = draw.disk((100, 100), r)
    m[rr, cc] = True
    s = shape_measures(m)
    assert s["circularity"] == pytest.approx(1.0, abs=0.03)
    assert s["area"] == pytest.approx(np.pi * r * r, rel=0.03)
    assert s["perimeter"] == pytest.approx(2 * np.pi * r, rel=0.03)
    assert s["equivalent_diameter"] == pytest.approx(2 * r, rel=0.02)
    assert s["feret_max"] == pytest.approx(2 * r + 1, abs=1.5)
    assert s["solidity"] > 0.97


def test_ellipse_measures():
    a, b = 60, 30
    m = np.zeros((200, 200), bool)
    rr, cc = draw.ellipse(100, 100, b, a)
    m[rr, cc] = True
    h = ((a - b) / (a + b)) ** 2
    perim = np.pi * (a + b) * (1 + 3 * h / (10 + np.sqrt(4 - 3 * h)))  # Ramanujan
    s = shape_measures(m)
    assert s["area"] == pytest.approx(np.pi * a * b, rel=0.01)
    assert s["perimeter"] == pytest.approx(perim, rel=0.02)
    assert s["circularity"] == pytest.approx(4 * np.pi * np.pi * a * b / perim**2, rel=0.03)
    assert s["feret_max"] == pytest.approx(2 * a, abs=1.5)
    assert feret_min(m) == pytest.approx(2 * b, abs=1.5)


def test_rectangle_measures():
    m = np.zeros((100, 160), bool)
    m[30:70, 20:120] = True  # 40 x 100
    s = shape_measures(m)
    assert s["area"] == 4000
    # the Crofton estimate is tuned for curved outlines; straight axis-aligned edges come out
    # about 5 % short of the pixel-edge length 280
    assert s["perimeter"] == pytest.approx(280, rel=0.06)
    assert feret_min(m) == pytest.approx(40, abs=0.01)
    assert s["feret_max"] == pytest.approx(np.hypot(40, 100), abs=1.5)
    assert s["solidity"] == pytest.approx(1.0)


def test_segmentation_finds_dark_spheroid_and_debris():
    rng = np.random.default_rng(0)
    img = np.full((128, 128), 0.75) + rng.normal(0, 0.01, (128, 128))
    rr, cc = draw.disk((64, 64), 25)
    img[rr, cc] = 0.3
    for y, x in ((10, 15), (110, 100), (20, 110)):
        rr, cc = draw.disk((y, x), 3)
        img[rr, cc] = 0.3
    m, sph, debris = measure_image(img.astype(np.float32))
    assert m.area == pytest.approx(np.pi * 25**2, rel=0.1)
    assert m.circularity > 0.9
    assert m.mean_intensity == pytest.approx(0.3, abs=0.05)
    assert debris.sum() > 0 and 0 < m.debris_fraction < 0.2


def test_morphology_separates_synthetic_effects(synth_dir):
    import pandas as pd

    from spheroid_rank.data.metadata import load_experiment
    from spheroid_rank.eval.morphology import morphology_table

    t = load_experiment(synth_dir)
    t = t[t["day"] == 10]
    m = morphology_table(t).merge(t[["plate", "well", "true_efficacy"]], on=["plate", "well"])
    unt = m[m["group"] == "untreated"]
    strong = m[pd.to_numeric(m["true_efficacy"]) > 0.8]
    assert strong["area"].median() < 0.6 * unt["area"].median()
    assert strong["mean_intensity"].median() < unt["mean_intensity"].median()


def test_real_microscopy_images(microscopy_dir, tmp_path):
    from PIL import Image

    from spheroid_rank.data.io import read_image
    from spheroid_rank.eval.morphology import overlay

    for name in ("orgaquant_1.jpg", "orgaquant_8.tif"):
        img = read_image(microscopy_dir / name)
        m, sph, debris = measure_image(img)
        assert sph.shape == img.shape and m.area > 0
        assert 0 < m.circularity <= 1.2 and 0 <= m.debris_fraction <= 1
        Image.fromarray(overlay(img, sph, debris)).save(tmp_path / f"{name}.png")


def test_real_microscopy_embedding(microscopy_dir):
    import pandas as pd

    from spheroid_rank.engine.config import SSLConfig
    from spheroid_rank.engine.embed import extract
    from spheroid_rank.models.ssl import build_method

    table = pd.DataFrame(
        {
            "path": [
                str(microscopy_dir / n)
                for n in ("orgaquant_1.jpg", "orgaquant_2.jpg", "orgaquant_8.tif")
            ]
        }
    )
    cfg = SSLConfig(backbone="spheroid_cnn_small", img_size=64, load_size=72)
    m = build_method("simclr", backbone="spheroid_cnn_small", in_chans=1, img_size=64).eval()
    emb = extract(m, table, cfg)
    assert emb.shape == (3, m.dim) and np.isfinite(emb).all()
    assert np.abs(emb[0] - emb[2]).sum() > 0


def test_real_fixture_objects_match_counts_checked_by_eye(microscopy_dir):
    """orgaquant_8.tif, top-left 750 x 562 px (full resolution): counted on the overlay by
    eye, 23 organoids of >= 40 px diameter lie there (an out-of-focus ghost not counted);
    the detector outlines 20 of them (one overlapping pair is merged, a few small ones fall
    under 40 px). The big one centred near (row 190, column 490) is about 135 px across."""
    from skimage import measure

    from spheroid_rank.data.io import read_image
    from spheroid_rank.eval.objects import measure_objects, segment_objects

    img = read_image(microscopy_dir / "orgaquant_8.tif")
    labels = segment_objects(img)
    assert labels.shape == img.shape
    props = [p for p in measure.regionprops(labels) if p.equivalent_diameter_area >= 40]
    crop = [p for p in props if p.centroid[0] < 562 and p.centroid[1] < 750]
    assert 18 <= len(crop) <= 26
    big = min(crop, key=lambda p: np.hypot(p.centroid[0] - 190, p.centroid[1] - 490))
    assert np.hypot(big.centroid[0] - 190, big.centroid[1] - 490) < 15
    assert 120 <= big.equivalent_diameter_area <= 150
    rows = measure_objects(img, labels)
    assert len(rows) == labels.max() >= 100
    assert np.median([r["circularity"] for r in rows]) > 0.7


def test_morphology_table_objects_all_and_single_warning(microscopy_dir, tmp_path, caplog):
    import pandas as pd

    from spheroid_rank.eval.morphology import morphology_table

    t = pd.DataFrame({"path": [str(microscopy_dir / "orgaquant_1.jpg")]})
    rows = morphology_table(t, objects="all", um_per_px=2.0, overlay_dir=tmp_path)
    assert len(rows) >= 80 and rows["object"].is_unique
    assert np.allclose(rows["area_um2"], rows["area"] * 4.0)
    assert np.allclose(rows["feret_max_um"], rows["feret_max"] * 2.0)
    assert (tmp_path / "orgaquant_1.png").exists()
    with caplog.at_level("WARNING"):
        single = morphology_table(t)
    assert len(single) == 1 and single["n_comparable"].iloc[0] > 1
    assert "several comparable objects" in caplog.text
