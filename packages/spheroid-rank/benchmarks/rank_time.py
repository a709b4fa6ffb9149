"""Time to score and rank 10 plates (600 wells x 4 days) from embeddings, per temporal model."""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import torch

from spheroid_rank.data.plate import inner_wells
from spheroid_rank.engine.config import ScoreConfig
from spheroid_rank.eval.ranking import dose_response, rank_conditions
from spheroid_rank.eval.scores import score_wells


def fake_experiment(plates: int, dim: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    conds = (
        [("untreated", "", "")] * 16
        + [("single_dose", "R", "1")] * 4
        + [
            ("screening", d, c)
            for d in ("A", "B")
            for c in ("0.1", "0.3", "1", "3", "10")
            for _ in range(4)
        ]
    )
    rows, emb = [], []
    drift = rng.normal(size=dim)
    for p in range(plates):
        order = rng.permutation(len(conds))
        for w, k in zip(inner_wells(), order):
            g, d, c = conds[k]
            eff = 0 if not c else float(c) / (float(c) + 1)
            x = rng.normal(size=dim)
            for day in (7, 8, 9, 10):
                e = x + drift * (day - 7) * (1 - eff) + rng.normal(0, 0.1, dim)
                rows.append(
                    {
                        "plate": str(p),
                        "well": w,
                        "day": day,
                        "group": g,
                        "drug": d,
                        "concentration": c,
                        "condition": f"{d} @ {c}" if d else g,
                    }
                )
                emb.append(e)
    return pd.DataFrame(rows), np.asarray(emb, np.float32)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")  # CPU-only stage
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    plates = 2 if args.quick else 10
    meta, emb = fake_experiment(plates, 64 if args.quick else 512)
    res = {"plates": plates, "wells": plates * 60, "dim": int(emb.shape[1])}
    for model in ["linear"] if args.quick else ["linear", "gru", "ldp"]:
        t0 = time.perf_counter()
        w = score_wells(meta, emb, ScoreConfig(model=model, metric="mahalanobis"))
        r = rank_conditions(w)
        dose_response(w)
        res[f"{model}_seconds"] = round(time.perf_counter() - t0, 2)
        res[f"{model}_untreated_rank"] = int(r.loc[r["condition"] == "untreated", "rank"].iloc[0])
    print(
        json.dumps(
            {"benchmark": "rank_time", "package": "spheroid-rank", "device": "cpu", "results": res}
        )
    )


if __name__ == "__main__":
    main()
