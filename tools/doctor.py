"""Report each package environment: Python, torch, CUDA, framework versions, import health.

Usage: python tools/doctor.py [--packages cd3d bus-classify ...] [--json]
Exits non-zero when an environment is missing or its package does not import.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Distributions whose versions matter for each package's framework stack.
FRAMEWORKS: dict[str, list[str]] = {
    "groupexp-da": ["mmengine", "mmcv", "mmdet", "mmdet3d", "numpy"],
    "instance-nerf": ["nerfstudio", "timm", "transformers", "numpy"],
    "cd3d": ["segmentation-models-pytorch", "timm", "rasterio", "lightning", "numpy"],
    "spheroid-rank": ["lightly", "timm", "scikit-image", "scikit-learn", "scipy", "lightning"],
    "bus-classify": ["timm", "transformers", "lightning", "scikit-learn"],
}

# Runs inside the package's interpreter; prints one JSON object.
PROBE = r"""
import importlib, importlib.metadata as md, json, platform, sys
info = {"python": platform.python_version(), "versions": {}}
for dist in sys.argv[2:]:
    try:
        info["versions"][dist] = md.version(dist)
    except md.PackageNotFoundError:
        info["versions"][dist] = None
try:
    import torch
    info["torch"] = torch.__version__
    info["cuda_build"] = torch.version.cuda
    info["cuda_available"] = torch.cuda.is_available()
except Exception as exc:  # report, do not crash the probe
    info["torch"] = f"error: {exc}"
try:
    importlib.import_module(sys.argv[1])
    info["imports"] = True
except Exception as exc:
    info["imports"] = False
    info["import_error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(info))
"""


def probe(package: str, root: Path = ROOT) -> dict:
    """Inspect one package's environment; never raises."""
    python = root / "packages" / package / ".venv" / "bin" / "python"
    if not python.exists():
        return {
            "package": package,
            "ok": False,
            "error": f"no environment at {python.parent.parent}",
        }
    module = package.replace("-", "_")
    cmd = [str(python), "-c", PROBE, module, *FRAMEWORKS.get(package, [])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0 or not proc.stdout.strip():
        return {"package": package, "ok": False, "error": proc.stderr.strip()[-500:]}
    info = json.loads(proc.stdout.strip().splitlines()[-1])
    info.update(package=package, ok=bool(info.get("imports")))
    return info


def format_row(info: dict) -> str:
    if "python" not in info:
        return f"{info['package']:<14} MISSING  {info.get('error', '')}"
    cuda = f"cuda {info.get('cuda_build')} ({'available' if info.get('cuda_available') else 'no device'})"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    status = "ok" if info["ok"] else f"IMPORT FAILS: {info.get('import_error', '')}"
    return (
        f"{info['package']:<14} python {info['python']}, torch {info.get('torch')}, {cuda}; "
        f"{versions} -> {status}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="+", default=list(FRAMEWORKS))
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    args = parser.parse_args(argv)
    report = [probe(p) for p in args.packages]
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for info in report:
            print(format_row(info))
    return 0 if all(info["ok"] for info in report) else 1


if __name__ == "__main__":
    sys.exit(main())
