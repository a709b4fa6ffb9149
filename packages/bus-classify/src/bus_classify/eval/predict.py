"""`bus-classify predict`: probabilities, calibrated probabilities and labels for a folder."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path

import numpy as np

from bus_classify.data.io import (
    BusClassifyError,
    ImageReadError,
    is_image_file,
    load_image,
    write_csv,
)
from bus_classify.data.sources import is_mask

log = logging.getLogger(__name__)
CALIBRATION_KEYS = ("temperature", "threshold", "class_names")


def check_inputs(
    checkpoint: str | Path, images: str | Path, calibration: str | Path | None
) -> tuple[list[Path], dict | None]:
    """Fail fast, before torch is imported: the checkpoint must be a torch (zip) archive, the
    images an image file or a folder holding some, the calibration file JSON with the keys
    ``eval`` writes. Returns the image files (masks left out) and the calibration dict."""
    checkpoint, root = Path(checkpoint), Path(images)
    if not checkpoint.is_file():
        raise BusClassifyError(f"{checkpoint}: checkpoint not found")
    if not zipfile.is_zipfile(checkpoint):
        raise BusClassifyError(
            f"{checkpoint}: not a bus-classify checkpoint (not a torch checkpoint archive)"
        )
    if root.is_file():
        if not is_image_file(root):
            raise BusClassifyError(f"{root}: not an image file (suffix {root.suffix!r})")
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if is_image_file(p) and not is_mask(p))
        if not files:
            raise BusClassifyError(f"{root}: no images found")
    else:
        raise BusClassifyError(f"{root}: no such image file or folder")
    cal = None
    if calibration is not None:
        try:
            cal = json.loads(Path(calibration).read_text())
        except FileNotFoundError:
            raise BusClassifyError(f"{calibration}: calibration file not found") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise BusClassifyError(f"{calibration}: not a JSON calibration file ({e})") from None
        missing = [k for k in CALIBRATION_KEYS if not isinstance(cal, dict) or k not in cal]
        if missing:
            raise BusClassifyError(
                f"{calibration}: not a calibration.json from `bus-classify eval` "
                f"(missing {missing})"
            )
    return files, cal


class _Images:
    def __init__(self, images, tf):
        self.images, self.tf = images, tf

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.tf(self.images[i]), 0


def predict_folder(
    checkpoint: str | Path,
    images: str | Path,
    out: str | Path,
    calibration: str | Path | None = None,
    tta: bool = False,
    device: str = "cpu",
) -> list[dict]:
    """Classify every image under ``images`` (recursively; masks skipped) into ``out`` CSV.

    Columns: ``file, prob_lump, prob_lump_calibrated, label``. The calibration file written by
    ``bus-classify eval`` supplies the temperature and threshold; without it T=1 and the label
    is the arg-max. Unreadable images are skipped, logged and counted.
    """
    calibration = Path(calibration) if calibration else None
    if calibration is None:
        guess = Path(checkpoint).parent / "calibration.json"
        calibration = guess if guess.exists() else None
    files, cal = check_inputs(checkpoint, images, calibration)

    from bus_classify.engine.checkpoint import eval_transform, load_classifier
    from bus_classify.engine.infer import predict_logits
    from bus_classify.eval.calibration import softmax
    from bus_classify.eval.metrics import positive_score
    from bus_classify.eval.report import decide, positive_classes

    model, hp = load_classifier(checkpoint)
    names = list(hp["class_names"])
    pos = positive_classes(names)
    temp, bias, thr = 1.0, np.zeros(len(names)), None
    if cal is not None:
        if cal.get("class_names") != names:
            raise BusClassifyError(
                f"{calibration}: class names {cal.get('class_names')} do not match "
                f"checkpoint {names}"
            )
        temp, thr = float(cal["temperature"]), float(cal["threshold"])
        bias = np.asarray(cal.get("bias") or np.zeros(len(names)), dtype=np.float64)
    else:
        log.warning("no calibration file: temperature 1, arg-max labels")
    loaded, kept, skipped = [], [], 0
    for p in files:
        try:
            loaded.append(load_image(p))
            kept.append(p)
        except ImageReadError as e:
            log.warning("skipping %s", e)
            skipped += 1
    if skipped:
        log.warning("skipped %d unreadable image(s)", skipped)
    if not loaded:
        raise BusClassifyError(f"{images}: none of the {len(files)} image(s) could be read")
    tf = eval_transform(hp)
    logits = predict_logits(model, _Images(loaded, tf), tta=tta, device=device)
    probs, probs_cal = softmax(logits), softmax(logits / temp + bias)
    labels = decide(probs_cal, pos, thr) if thr is not None else probs_cal.argmax(axis=1)
    rows = [
        {
            "file": str(p),
            "prob_lump": f"{a:.6g}",
            "prob_lump_calibrated": f"{b:.6g}",
            "label": names[int(k)],
        }
        for p, a, b, k in zip(
            kept, positive_score(probs, pos), positive_score(probs_cal, pos), np.asarray(labels)
        )
    ]
    write_csv(out, rows, ["file", "prob_lump", "prob_lump_calibrated", "label"])
    return rows
