import json
import textwrap

import bench
import pytest
from conftest import make_fake_env

GOOD = """
import argparse, json
p = argparse.ArgumentParser(); p.add_argument("--device"); p.add_argument("--quick", action="store_true")
a = p.parse_args()
print("warming up")
print(json.dumps({"benchmark": "speed", "device": a.device,
                  "results": {"quick": a.quick, "img_per_s": {"bs8": 123.456}, "ratio": 0.95}}))
"""


def write_script(root, package, name, body):
    path = root / "packages" / package / "benchmarks" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(body))
    return path


def test_collects_json_and_writes_table(tmp_path):
    make_fake_env(tmp_path, "pkg-a")
    write_script(tmp_path, "pkg-a", "speed.py", GOOD)
    write_script(
        tmp_path, "pkg-a", "_helpers.py", "raise SystemExit(3)"
    )  # private: not a benchmark
    out = tmp_path / "out"
    code = bench.main(["--root", str(tmp_path), "--out", str(out), "--quick"])
    assert code == 0
    records = json.loads((out / "results.json").read_text())
    assert [r["benchmark"] for r in records] == ["speed"]
    assert records[0]["output"]["results"]["quick"] is True
    table = (out / "results.md").read_text()
    assert "| pkg-a | speed | cpu | quick: True<br>img_per_s.bs8: 123.5<br>ratio: 0.95 |" in table


def test_failures_are_reported_and_exit_nonzero(tmp_path):
    make_fake_env(tmp_path, "pkg-b")
    write_script(tmp_path, "pkg-b", "boom.py", "raise RuntimeError('disk on fire')")
    write_script(tmp_path, "pkg-b", "silent.py", "print('no json here')")
    (tmp_path / "packages" / "pkg-c" / "benchmarks").mkdir(parents=True)
    write_script(tmp_path, "pkg-c", "noenv.py", GOOD)
    out = tmp_path / "out"
    assert bench.main(["--root", str(tmp_path), "--out", str(out)]) == 1
    errors = {r["benchmark"]: r["error"] for r in json.loads((out / "results.json").read_text())}
    assert "disk on fire" in errors["boom"]
    assert "no JSON" in errors["silent"]
    assert "no environment" in errors["noenv"]
    assert "FAILED" in (out / "results.md").read_text()


def test_last_json_and_flatten():
    assert bench.last_json('{"a": 1}\nlog line\n{"b": {"c": 2}}\n') == {"b": {"c": 2}}
    with pytest.raises(ValueError):
        bench.last_json("nothing\n")
    assert bench.flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_only_filter_and_shared_interpreter(tmp_path):
    """--only picks benchmarks by name; --python runs them with src/ on PYTHONPATH (GPU image)."""
    import sys

    src = tmp_path / "packages" / "pkg-d" / "src" / "pkg_d"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("VALUE = 7\n")
    write_script(
        tmp_path,
        "pkg-d",
        "uses_src.py",
        "import json, pkg_d; print(json.dumps({'results': {'value': pkg_d.VALUE}}))",
    )
    write_script(tmp_path, "pkg-d", "other.py", "raise SystemExit(1)")
    out = tmp_path / "out"
    code = bench.main(
        [
            "--root",
            str(tmp_path),
            "--out",
            str(out),
            "--python",
            sys.executable,
            "--only",
            "pkg-d/uses_src",
        ]
    )
    assert code == 0
    records = json.loads((out / "results.json").read_text())
    assert [(r["benchmark"], r["output"]["results"]["value"]) for r in records] == [("uses_src", 7)]
