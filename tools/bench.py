"""Run every package benchmark in its own environment and collect one markdown table.

Each `packages/<pkg>/benchmarks/*.py` prints one JSON object as its last stdout line
(see CONTRIBUTING.md). Usage:

    python tools/bench.py [--packages cd3d ...] [--device cpu|cuda] [--quick] [--out bench]

Writes `<out>/results.json` and `<out>/results.md`; exits non-zero when a benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def discover(
    root: Path, packages: list[str] | None = None, only: list[str] | None = None
) -> list[tuple[str, Path]]:
    """(package, script) pairs, sorted, for the selected packages and benchmark names."""
    found = []
    for script in sorted(root.glob("packages/*/benchmarks/*.py")):
        package = script.parents[1].name
        if script.name.startswith("_") or (packages and package not in packages):
            continue
        if only and script.stem not in only and f"{package}/{script.stem}" not in only:
            continue
        found.append((package, script))
    return found


def last_json(stdout: str) -> dict:
    """The last stdout line that parses as a JSON object."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise ValueError("benchmark printed no JSON object line")


def run_one(
    root: Path,
    package: str,
    script: Path,
    extra: list[str],
    timeout: float,
    python: str | None = None,
) -> dict:
    """Run one benchmark in the package's environment, or with `python` and its src on PYTHONPATH."""
    record = {"package": package, "benchmark": script.stem, "script": str(script.relative_to(root))}
    env = None
    if python is None:
        interpreter = root / "packages" / package / ".venv" / "bin" / "python"
        if not interpreter.exists():
            return record | {
                "ok": False,
                "error": f"no environment {interpreter.parent.parent} (make install)",
            }
        python = str(interpreter)
    else:  # a shared interpreter (e.g. a GPU machine's image): import the package from src/
        src = str(root / "packages" / package / "src")
        env = os.environ | {
            "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))
        }
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [python, str(script), *extra],
            cwd=script.parents[1],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return record | {"ok": False, "error": f"timed out after {timeout:.0f} s"}
    record["seconds"] = round(time.perf_counter() - start, 1)
    if proc.returncode != 0:
        return record | {"ok": False, "error": (proc.stderr or proc.stdout).strip()[-800:]}
    try:
        record["output"] = last_json(proc.stdout)
    except ValueError as exc:
        return record | {"ok": False, "error": str(exc)}
    return record | {"ok": True}


def flatten(value: object, prefix: str = "") -> dict[str, object]:
    """Nested dicts to dotted keys, for a compact table cell."""
    if isinstance(value, dict):
        out: dict[str, object] = {}
        for key, sub in value.items():
            out.update(flatten(sub, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): value}


def to_markdown(records: list[dict]) -> str:
    lines = [
        "| package | benchmark | device | results | run time |",
        "|---|---|---|---|---|",
    ]
    for rec in records:
        if rec["ok"]:
            out = rec["output"]
            results = flatten(out.get("results", out))
            cell = "<br>".join(
                f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in results.items()
            )
            device = out.get("device", "?")
        else:
            cell, device = f"FAILED: {rec['error'].splitlines()[-1] if rec['error'] else ''}", "-"
        seconds = f"{rec['seconds']} s" if "seconds" in rec else "-"
        lines.append(f"| {rec['package']} | {rec['benchmark']} | {device} | {cell} | {seconds} |")
    return "\n".join(lines) + "\n"


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="+", default=None)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "bench")
    parser.add_argument(
        "--only",
        nargs="+",
        default=None,
        help="benchmark names to run (`throughput` or `cd3d/throughput`)",
    )
    parser.add_argument(
        "--python",
        default=None,
        help="one interpreter for all packages instead of packages/*/.venv",
    )
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    extra = ["--device", args.device] + (["--quick"] if args.quick else [])
    scripts = discover(args.root, args.packages, args.only)
    if not scripts:
        print("no benchmarks found", file=sys.stderr)
        return 1
    records = []
    for package, script in scripts:
        print(f"== {package}: {script.name}", flush=True)
        records.append(run_one(args.root, package, script, extra, args.timeout, args.python))
        print("   ok" if records[-1]["ok"] else f"   FAILED: {records[-1]['error'][-300:]}")
    write_atomic(args.out / "results.json", json.dumps(records, indent=2) + "\n")
    table = to_markdown(records)
    write_atomic(args.out / "results.md", table)
    print(table)
    return 0 if all(r["ok"] for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
