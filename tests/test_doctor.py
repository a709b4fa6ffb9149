import doctor
from conftest import PACKAGES, ROOT, make_fake_env


def test_probe_reports_versions_and_import_health(tmp_path):
    # "json" imports in any interpreter; "no-such-pkg" never does.
    make_fake_env(tmp_path, "json")
    make_fake_env(tmp_path, "no-such-pkg")
    good = doctor.probe("json", root=tmp_path)
    bad = doctor.probe("no-such-pkg", root=tmp_path)
    assert good["ok"] is True and good["python"].count(".") == 2
    assert bad["ok"] is False and "ModuleNotFoundError" in bad["import_error"]
    assert "IMPORT FAILS" in doctor.format_row(bad)


def test_probe_missing_environment(tmp_path):
    info = doctor.probe("cd3d", root=tmp_path)
    assert info["ok"] is False and "no environment" in info["error"]
    assert "MISSING" in doctor.format_row(info)


def test_real_environments_import():
    """Every installed package environment imports its package with torch 2.13."""
    installed = [
        p for p in PACKAGES if (ROOT / "packages" / p / ".venv" / "bin" / "python").exists()
    ]
    for package in installed:
        info = doctor.probe(package)
        assert info["ok"], (package, info)
        assert info["torch"].startswith("2.13.0"), (package, info["torch"])
