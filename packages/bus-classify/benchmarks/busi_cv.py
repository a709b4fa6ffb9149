"""Grouped k-fold cross-validation of the shipped configs on a real BUSI-layout folder.

Each fold is one stratified group of near-duplicate groups (the package's own duplicate
detector), so duplicates never straddle train and test. Fold ``i`` is the test set, fold
``i+1`` the validation set (checkpoint selection, temperature, threshold), the rest train.
Every job runs the package's own `train()` (Lightning, the config's default flags) and
`evaluate(..., tta=True)`, exactly the commands a user runs, and the JSON reports mean and
standard deviation over folds of ROC-AUC, PR-AUC, macro F1 (`f1_macro`: eval's headline
decision; `f1_argmax` and two other decision rules beside it), sensitivity and specificity at
the validation-tuned threshold, ECE before/after calibration (temperature alone
and temperature + class bias) and the Grad-CAM localisation on the lesion masks; each job's
validation and test logits are kept in ``jobs.jsonl`` for other decision rules afterwards.
Because a 15-bin ECE on one ~80-image fold is dominated by sampling noise, each variant also
gets the ECE of its out-of-fold test predictions pooled over all folds (n = the whole set) and the noise
floor: the ECE a perfectly calibrated predictor with the same probabilities scores at that n.

    python benchmarks/busi_cv.py --data ../../../shared/fixtures/busi_dev --device cuda
    python benchmarks/busi_cv.py --data DIR --task malignant --variants cnn resnet18
    python benchmarks/busi_cv.py --data DIR --variants cnn cnn-ce=cnn:loss=ce --workers 8

A variant is ``NAME`` (a shipped config) or ``LABEL=CONFIG:key=value,key=value``. Jobs run in
``--workers`` processes (one GPU is shared); results stream to ``OUT/jobs.jsonl`` so an
interrupted run keeps its finished folds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

METRICS = (
    "roc_auc",
    "pr_auc",
    "f1_macro",
    "f1_argmax",
    "f1_calibrated_argmax",
    "f1_val_f1_threshold",
    "sensitivity_at_threshold",
    "specificity_at_threshold",
    "ece",
    "ece_calibrated",
    "ece_temperature",
    "ece_temperature_bias",
    "cam_mass_in_mask",
    "pointing_game",
    "best_epoch",
    "train_seconds",
)
QUICK = {"img_size": 48, "epochs": 2, "batch_size": 16}


def parse_variant(text: str) -> tuple[str, str, dict]:
    """``LABEL=CONFIG:k=v,k=v`` | ``CONFIG`` -> (label, config, overrides)."""
    import yaml

    label, _, rest = text.partition("=") if "=" in text.split(":")[0] else (text, "", text)
    config, _, kv = rest.partition(":")
    overrides = {}
    for item in filter(None, kv.split(",")):
        k, _, v = item.partition("=")
        overrides[k] = yaml.safe_load(v)
    return label, config, overrides


def make_folds(data: str, task: str, k: int, seed: int, out: Path) -> list[Path]:
    """Write one split CSV per fold under ``out``; returns their paths."""
    from sklearn.model_selection import StratifiedGroupKFold

    from bus_classify.data.io import BusClassifyError, write_csv
    from bus_classify.data.sources import discover
    from bus_classify.data.split import make_split

    rows, report = make_split(discover(data, task), seed=seed)
    strata = [r["source_class"] for r in rows]
    groups = [r["dup_group"] for r in rows]
    for cls, n in Counter(strata).items():
        n_groups = len({g for g, c in zip(groups, strata) if c == cls})
        if n_groups < k:
            raise BusClassifyError(
                f"{data}: class {cls!r} has {n} images in {n_groups} duplicate "
                f"groups; {k}-fold CV needs at least {k} groups per class"
            )
    sgkf = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
    fold_of = np.zeros(len(rows), int)
    for i, (_, test) in enumerate(sgkf.split(np.zeros(len(rows)), strata, groups)):
        fold_of[test] = i
    paths = []
    for i in range(k):
        split = {i: "test", (i + 1) % k: "val"}
        fold_rows = [{**r, "split": split.get(int(f), "train")} for r, f in zip(rows, fold_of)]
        paths.append(write_csv(out / f"fold{i}" / "split.csv", fold_rows))
    print(
        f"{len(rows)} images, {len(report.duplicate_groups)} duplicate groups, "
        f"{len(report.label_conflicts)} label conflicts; folds: "
        f"{[int((fold_of == i).sum()) for i in range(k)]}",
        file=sys.stderr,
    )
    return paths


def epoch_curve_callback():
    """A Lightning callback that records, every validation epoch, the lump margin (lump logit
    minus no-lump logit, binary task) of every validation and test image with the weights
    validation sees (EMA ones when on), no TTA; for offline diagnosis of training curves and
    checkpoint-selection rules (``curve`` in ``jobs.jsonl``). Training is unchanged by it (the
    global torch RNG state is restored after the extra passes)."""
    import lightning as L
    import torch

    class EpochCurve(L.Callback):
        def __init__(self) -> None:
            self.epochs: list[dict] = []
            self.labels: dict[str, list[int]] = {}

        def _margins(self, pl_module, loader) -> list[float]:
            out = []
            with torch.no_grad():
                for x, _ in loader:
                    z = pl_module(x.to(pl_module.device)).float()
                    out += (z[:, -1] - z[:, 0]).cpu().tolist()
            return [round(v, 3) for v in out]

        def on_validation_epoch_start(self, trainer, pl_module) -> None:
            if trainer.sanity_checking:
                return
            # each DataLoader iterator draws its base seed from torch's global generator;
            # restore it so the recorded run trains exactly like one without the callback
            rng = torch.get_rng_state()
            was_training = pl_module.training
            pl_module.eval()
            dm = trainer.datamodule
            self.labels = {s: dm.datasets[s].labels for s in ("val", "test")}
            self.epochs.append(
                {
                    "epoch": trainer.current_epoch + 1,
                    "val": self._margins(pl_module, dm.val_dataloader()),
                    "test": self._margins(pl_module, dm.test_dataloader()),
                }
            )
            pl_module.train(was_training)
            torch.set_rng_state(rng)

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            m = trainer.callback_metrics
            if self.epochs and "train_loss" in m:
                self.epochs[-1].update(
                    {k: round(float(m[k]), 4) for k in ("train_loss", "val_auc") if k in m}
                )

    return EpochCurve()


def run_job(job: dict) -> dict:
    """Train and evaluate one (variant, fold) with the package's own functions."""
    import torch

    from bus_classify.engine.config import load_config
    from bus_classify.engine.train import train
    from bus_classify.eval.calibration import (
        fit_temperature,
        fit_temperature_bias,
        softmax,
        threshold_for_macro_f1,
    )
    from bus_classify.eval.evaluate import evaluate
    from bus_classify.eval.report import decide, positive_classes

    torch.set_num_threads(job["threads"])
    cfg = load_config(job["config"], {**job["overrides"], "num_workers": 0})
    run = Path(job["run"])
    t0 = time.perf_counter()
    curve = epoch_curve_callback() if job.get("curves") and cfg["task"] == "binary" else None
    best = train(
        cfg,
        job["split"],
        run,
        device=job["device"],
        progress=False,
        save_last=False,
        extra_callbacks=[curve] if curve else None,
    )
    seconds = time.perf_counter() - t0
    m = evaluate(
        best, job["split"], run / "eval", tta=True, device=job["device"], localize=job["localize"]
    )
    d = m["details"]
    z = np.load(run / "eval" / "logits.npz")
    t = fit_temperature(z["logits_val"], z["labels_val"])
    tb, b = fit_temperature_bias(z["logits_val"], z["labels_val"])
    probs = {  # test probabilities per calibrator, pooled over folds by summarise()
        "raw": softmax(z["logits_test"]),
        "temperature": softmax(z["logits_test"], t),
        "temperature_bias": softmax(z["logits_test"] / tb + b),
    }
    # other decision rules on the same logits: arg-max of the calibrated probabilities, and the
    # lump threshold that maximises macro F1 on the validation fold
    from sklearn.metrics import f1_score

    pos = positive_classes(list(d["argmax"]["per_class"]))
    cal_val = softmax(z["logits_val"] / tb + b)
    k = cal_val.shape[1]
    thr_f1 = threshold_for_macro_f1(cal_val, z["labels_val"], pos)

    def macro_f1(pred):
        return float(f1_score(z["labels_test"], pred, labels=list(range(k)), average="macro"))

    rules = {
        "f1_calibrated_argmax": macro_f1(probs["temperature_bias"].argmax(axis=1)),
        "f1_val_f1_threshold": macro_f1(decide(probs["temperature_bias"], pos, thr_f1)),
    }
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    out = {
        "label": job["label"],
        "task": cfg["task"],
        "fold": job["fold"],
        "roc_auc": m["roc_auc"],
        "pr_auc": m["pr_auc"],
        "f1_macro": m["f1_macro"],
        "f1_argmax": d["argmax"]["f1_macro"],
        **rules,
        "val_f1_threshold": thr_f1,
        "sensitivity_at_threshold": d["at_threshold"]["sensitivity"],
        "specificity_at_threshold": d["at_threshold"]["specificity"],
        "ece": m["ece"],
        "ece_calibrated": m["ece_calibrated"],
        "temperature": d["temperature"],
        "best_epoch": int(ckpt["epoch"]) + 1,
        "train_seconds": round(seconds, 1),
        "n_test": d["argmax"]["n"],
        "calibration": d["calibration"],
        "ece_temperature": d["ece_calibrated_by"]["temperature"],
        "ece_temperature_bias": d["ece_calibrated_by"]["temperature_bias"],
        "test_labels": z["labels_test"].tolist(),
        "test_probs": {k: np.round(v, 5).tolist() for k, v in probs.items()},
        "logits": {  # raw, for other decision rules afterwards
            "val": np.round(z["logits_val"], 4).tolist(),
            "val_labels": z["labels_val"].tolist(),
            "test": np.round(z["logits_test"], 4).tolist(),
        },
    }
    if curve is not None:
        out["curve"] = {
            "val_labels": curve.labels["val"],
            "test_labels": curve.labels["test"],
            "epochs": curve.epochs,
        }
    loc = d.get("gradcam_localization")
    if loc:
        out.update(
            cam_mass_in_mask=loc["cam_mass_in_mask"],
            pointing_game=loc["pointing_game"],
            mask_area_fraction=loc["mask_area_fraction"],
        )
    return out


def ece_floor(probs: np.ndarray, draws: int = 1000, seed: int = 0) -> dict:
    """15-bin ECE of a perfectly calibrated predictor with these probabilities: labels drawn
    from the probabilities themselves, so every gap above 0 is sampling noise at this n."""
    from bus_classify.eval.metrics import expected_calibration_error

    rng = np.random.default_rng(seed)
    cum = np.cumsum(probs, axis=1)
    eces = [
        expected_calibration_error(probs, (rng.random((len(probs), 1)) > cum).sum(axis=1))
        for _ in range(draws)
    ]
    return {"mean": round(float(np.mean(eces)), 4), "p95": round(float(np.quantile(eces, 0.95)), 4)}


def pooled(rs: list[dict], calibration: str) -> dict:
    """ECE of the out-of-fold test predictions pooled over all folds (n = the whole set), per
    calibrator, with the noise floor at the pooled n and at the mean per-fold n."""
    from bus_classify.eval.metrics import expected_calibration_error

    y = np.concatenate([r["test_labels"] for r in rs])
    out = {"n": int(len(y))}
    for k in rs[0]["test_probs"]:
        p = np.concatenate([np.asarray(r["test_probs"][k]) for r in rs])
        out[f"ece_{k}"] = round(expected_calibration_error(p, y), 4)
    p = np.concatenate([np.asarray(r["test_probs"][calibration]) for r in rs])
    out["ece_floor_pooled"] = ece_floor(p)
    per_fold = [ece_floor(np.asarray(r["test_probs"][calibration]), 300)["mean"] for r in rs]
    out["ece_floor_per_fold"] = round(float(np.mean(per_fold)), 4)
    return out


def summarise(results: list[dict], variants: list[tuple[str, str, dict]]) -> dict:
    """Mean, standard deviation and per-fold values per variant."""
    out = {}
    for label, config, overrides in variants:
        rs = sorted((r for r in results if r["label"] == label), key=lambda r: r["fold"])
        if not rs:
            continue
        entry = {
            "config": config,
            "overrides": overrides,
            "task": rs[0]["task"],
            "folds_done": len(rs),
        }
        for key in METRICS + ("mask_area_fraction", "temperature"):
            vals = [r[key] for r in rs if r.get(key) is not None]
            if vals:
                entry[key] = {
                    "mean": round(float(np.mean(vals)), 4),
                    "sd": round(float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0, 4),
                    "folds": [round(float(v), 4) for v in vals],
                }
        if all("test_probs" in r for r in rs):
            entry["pooled"] = pooled(rs, rs[0].get("calibration", "temperature"))
        out[label] = entry
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="BUSI-layout folder (benign/ malignant/ normal/)")
    p.add_argument("--variants", nargs="+", default=["cnn", "resnet18", "swin"])
    p.add_argument("--task", default="binary", choices=["binary", "malignant", "3class"])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--workers", type=int, default=1, help="parallel job processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per job process")
    p.add_argument("--out", default="busi_cv_out")
    p.add_argument("--quick", action="store_true", help="3 folds, 2 epochs, 48 px (mechanics only)")
    p.add_argument("--no-localize", action="store_true", help="skip Grad-CAM on the masks")
    p.add_argument("--time-limit", type=float, help="seconds; then stop workers, summarise")
    p.add_argument(
        "--curves",
        action="store_true",
        help="keep per-epoch validation/test lump margins of every job (binary task)",
    )
    p.add_argument("--job-file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    out = Path(args.out)
    if args.job_file:  # worker process: run the given jobs, append one JSON line each
        import logging

        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        for job in json.loads(Path(args.job_file).read_text()):
            try:  # first worker to create the claim folder runs the job (a shared queue)
                (out / "claims" / f"{job['label']}__{job['fold']}").mkdir(parents=True)
            except FileExistsError:
                continue
            res = run_job(job)
            with open(out / "jobs.jsonl", "a") as f:
                f.write(json.dumps(res) + "\n")
            print(json.dumps(res), file=sys.stderr, flush=True)
        return {}
    from bus_classify.data.io import write_json

    folds = 3 if args.quick else args.folds
    variants = [parse_variant(v) for v in args.variants]
    out.mkdir(parents=True, exist_ok=True)
    splits = make_folds(args.data, args.task, folds, args.seed, out / "folds")
    jobs = []
    for label, config, overrides in variants:  # listed order = priority
        for i, split in enumerate(splits):
            ov = {"task": args.task, **overrides, **(QUICK if args.quick else {})}
            jobs.append(
                {
                    "label": label,
                    "config": config,
                    "overrides": ov,
                    "fold": i,
                    "split": str(split),
                    "run": str(out / "runs" / label / f"fold{i}"),
                    "device": args.device,
                    "threads": args.threads,
                    "localize": not args.no_localize,
                    "curves": args.curves,
                }
            )
    done = set()
    if (out / "jobs.jsonl").exists():  # resume: skip finished jobs
        done = {(r["label"], r["fold"]) for r in map(json.loads, open(out / "jobs.jsonl"))}
    todo = [j for j in jobs if (j["label"], j["fold"]) not in done]
    t0 = time.perf_counter()
    procs = []
    shutil.rmtree(out / "claims", ignore_errors=True)
    jf = out / "jobs.json"
    jf.write_text(json.dumps(todo))
    for w in range(min(args.workers, len(todo))):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": str(args.threads)}
        log = open(out / f"worker{w}.log", "w")
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    __file__,
                    "--data",
                    args.data,
                    "--out",
                    str(out),
                    "--job-file",
                    str(jf),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    deadline = t0 + args.time_limit if args.time_limit else None
    codes = []
    for pr in procs:
        try:
            left = None if deadline is None else max(1.0, deadline - time.perf_counter())
            codes.append(pr.wait(timeout=left))
        except subprocess.TimeoutExpired:  # out of time: keep the finished jobs, stop the rest
            pr.kill()
            codes.append(pr.wait())
    results = (
        [json.loads(line) for line in open(out / "jobs.jsonl")]
        if (out / "jobs.jsonl").exists()
        else []
    )
    summary = {
        "benchmark": "busi_cv",
        "package": "bus_classify",
        "data": str(args.data),
        "task": args.task,
        "folds": folds,
        "device": args.device,
        "workers": args.workers,
        "quick": args.quick,
        "wall_seconds": round(time.perf_counter() - t0, 1),
        "failed_workers": sum(c != 0 for c in codes),
        "jobs_done": len(results),
        "jobs_planned": len(jobs),
        "results": summarise(results, variants),
    }
    write_json(out / "busi_cv.json", summary)
    print(json.dumps(summary))
    return summary


if __name__ == "__main__":
    main()
