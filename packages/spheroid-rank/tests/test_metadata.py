import shutil

import pandas as pd
import pytest

from spheroid_rank.data.metadata import MetadataError, load_experiment, validate_table


def _copy(src, dst):
    shutil.copytree(src, dst)
    return dst


def test_folder_layout_builds_table(synth_dir):
    t = load_experiment(synth_dir)
    assert len(t) == 60 * 4
    assert set(t["day"]) == {7, 8, 9, 10}
    assert (t.groupby(["plate", "well"]).size() == 4).all()
    assert set(t["group"]) == {"untreated", "single_dose", "screening"}
    assert "true_efficacy" in t.columns
    assert t["condition"].nunique() == 12


def test_inner_filter_drops_outer_wells(synth_dir, tmp_path):
    d = _copy(synth_dir, tmp_path / "d")
    shutil.copy(d / "plate_1/day_10/B02.png", d / "plate_1/day_10/A01.png")
    lay = pd.read_csv(d / "layout.csv", dtype=str)
    extra = lay.iloc[[0]].copy()
    extra["well"] = "A01"
    pd.concat([lay, extra]).to_csv(d / "layout.csv", index=False)
    assert "A01" not in set(load_experiment(d, check_images=False)["well"])
    assert "A01" in set(
        load_experiment(d, inner_only=False, target_day=None, check_images=False)["well"]
    )


def test_missing_target_day_error_or_exclusion(synth_dir, tmp_path):
    d = _copy(synth_dir, tmp_path / "d")
    (d / "plate_1/day_10/C05.png").unlink()
    with pytest.raises(MetadataError, match="C05"):
        load_experiment(d)
    t = load_experiment(d, on_missing="exclude")
    assert "C05" not in set(t["well"]) and t["well"].nunique() == 59


def test_bad_well_and_duplicates(synth_dir, tmp_path):
    t = load_experiment(synth_dir, check_images=False)
    bad = t.copy()
    bad.loc[0, "well"] = "Q3"
    with pytest.raises(MetadataError, match="Q3"):
        validate_table(bad, check_images=False)
    dup = pd.concat([t, t.iloc[[5]]])
    with pytest.raises(MetadataError, match=f"well {t.iloc[5]['well']} day"):
        validate_table(dup, check_images=False)


def test_no_untreated_and_unknown_layout_well(synth_dir, tmp_path):
    t = load_experiment(synth_dir, check_images=False)
    with pytest.raises(MetadataError, match="no untreated"):
        validate_table(t[t["group"] != "untreated"], check_images=False)
    d = _copy(synth_dir, tmp_path / "d")
    lay = pd.read_csv(d / "layout.csv", dtype=str)
    lay[lay["well"] != "D04"].to_csv(d / "layout.csv", index=False)
    with pytest.raises(MetadataError, match="D04"):
        load_experiment(d)


def test_mixed_bit_depth_rejected(synth_dir, tmp_path):
    import numpy as np
    import tifffile

    d = _copy(synth_dir, tmp_path / "d")
    (d / "plate_1/day_9/E06.png").unlink()
    tifffile.imwrite(d / "plate_1/day_9/E06.tif", np.zeros((64, 64), np.uint16))
    with pytest.raises(MetadataError, match="mixed bit depths"):
        load_experiment(d)


def test_direct_csv(synth_dir, tmp_path):
    t = load_experiment(synth_dir)
    csv = tmp_path / "meta.csv"
    t[["plate", "well", "day", "group", "drug", "concentration", "path"]].to_csv(csv, index=False)
    t2 = load_experiment(csv)
    assert len(t2) == len(t) and list(t2["condition"]) == list(t["condition"])
