"""Height-loss weight sweep: siam_unet trained with each ``lambda_3d`` and several seeds.

Runs ``accuracy.py --models siam_unet --lambdas L --seed S`` for every (L, S) as parallel
subprocesses (``--jobs``; each its own synthetic dataset of that seed, the ``demo.yaml`` recipe,
heights scaled by ``height_scale`` = 40 m as in training) and prints one JSON object: per λ the
mean and spread over seeds of F1 / RMSE / cRMSE and the no-change baseline of the same seeds, plus
a markdown table on stderr. ``--quick`` is a 1-epoch smoke run on 6 tiles.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import emit

KEYS = ("f1", "iou", "rmse", "mae", "crmse_3d_nonzero", "crmse_2d_label")


def one(lam: str, seed: int, a: argparse.Namespace, root: Path) -> dict:
    cmd = [sys.executable, str(Path(__file__).parent / "accuracy.py"), "--device", a.device,
           "--models", "siam_unet", "--lambdas", lam, "--seed", str(seed),
           "--epochs", str(a.epochs), "--out", str(root / f"l{lam}_s{seed}")]  # fmt: skip
    cmd += ["--quick"] if a.quick else []
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.stderr.write(r.stderr[-3000:])
        raise SystemExit(f"lambda {lam} seed {seed}: accuracy.py exited {r.returncode}")
    res = json.loads(r.stdout.strip().splitlines()[-1])["results"]
    name = f"siam_unet_lambda{float(lam):g}"
    row = {k: res[f"{name}_{k}"] for k in KEYS}
    row |= {f"no_change_{k}": res[f"no_change_{k}"] for k in ("rmse", "crmse_3d_nonzero")}
    row |= {"train_s": res["train_seconds"][name]}
    print(json.dumps({"lambda": lam, "seed": seed} | row), file=sys.stderr, flush=True)
    return row


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--lambdas", default="3,10,30")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--jobs", type=int, default=1)
    a = p.parse_args(argv)
    lams, seeds = a.lambdas.split(","), [int(s) for s in a.seeds.split(",")]
    runs = [(lam, s) for lam in lams for s in seeds]
    with tempfile.TemporaryDirectory() as d, ThreadPoolExecutor(a.jobs) as pool:
        rows = dict(zip(runs, pool.map(lambda r: one(*r, a, Path(d)), runs)))
    table = ["| λ | seeds | F1 | RMSE (m) | cRMSE 3D≠0 (m) | no-change RMSE / cRMSE (m) |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    summary = {}
    for lam in lams:
        per = [rows[lam, s] for s in seeds]
        stats = {}
        for k in (*KEYS, "no_change_rmse", "no_change_crmse_3d_nonzero", "train_s"):
            vals = [r[k] for r in per]
            stats[k] = {"mean": round(statistics.fmean(vals), 4), "per_seed": vals}
        summary[lam] = stats

        def cell(k: str, st: dict = stats) -> str:
            v = st[k]["per_seed"]
            return f"{statistics.fmean(v):.3f} ({', '.join(f'{x:.3f}' for x in v)})"

        table.append(f"| {lam} | {len(seeds)} | {cell('f1')} | {cell('rmse')} | "
                     f"{cell('crmse_3d_nonzero')} | {cell('no_change_rmse')} / "
                     f"{cell('no_change_crmse_3d_nonzero')} |")  # fmt: skip
    print("\n".join(table), file=sys.stderr)
    best = min(lams, key=lambda lam: summary[lam]["crmse_3d_nonzero"]["mean"])
    emit({"benchmark": "lambda_sweep", "package": "cd3d", "device": a.device,
          "results": {"seeds": seeds, "epochs": 1 if a.quick else a.epochs, "per_lambda": summary,
                      "best_crmse_3d_lambda": best}})  # fmt: skip


if __name__ == "__main__":
    main()
