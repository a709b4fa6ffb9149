"""Zero-shot lump / no-lump classification with local vision-language models (transformers).

* CLIP-style models: the ``zero-shot-image-classification`` pipeline scores every label prompt;
  a class's probability is the sum over its prompts.
* Generative VLMs (LLaVA family): the ``image-text-to-text`` pipeline answers a question; the
  label is parsed from the answer and answers that cannot be parsed are counted as
  ``unparsed`` (never guessed).
"""

from __future__ import annotations

import json
import logging
import re
from importlib import resources
from pathlib import Path

import numpy as np
import yaml

from bus_classify.data.io import BusClassifyError, write_csv, write_json
from bus_classify.data.sources import BINARY_CLASSES, class_index, discover, read_sample
from bus_classify.data.split import read_csv
from bus_classify.eval.report import write_report

log = logging.getLogger(__name__)
CLIP_TYPES = {"clip", "siglip", "siglip2", "chinese_clip", "altclip", "align", "blip"}

_NEG = re.compile(
    r"\b(no[\s_-]*(lump|mass|lesion|tumou?r|nodule|abnormalit\w*)|"
    r"without (a |any )?(lump|mass|lesion)|normal|clear|negative|healthy|"
    r"absent|not (a |any )?(lump|mass|lesion))\b"
)
_POS = re.compile(r"\b(lump|mass|lesion|tumou?r|nodule|benign|malignan\w*|positive|cancer\w*)\b")
_LABEL = re.compile(r"(?:label|answer|diagnosis|classification)\s*[:=-]\s*([^\n.;]*)")


def load_prompts(path: str | Path | None = None) -> dict:
    """Prompt file (YAML with ``no_lump``, ``lump`` lists and a ``question``)."""
    text = (
        Path(path).read_text()
        if path
        else resources.files("bus_classify.configs").joinpath("prompts.yaml").read_text()
    )
    cfg = yaml.safe_load(text)
    for c in BINARY_CLASSES:
        if not cfg.get(c):
            raise BusClassifyError(f"{path or 'prompts.yaml'}: needs a non-empty list under {c!r}")
    return cfg


def _classify_phrase(text: str) -> int | None:
    t = text.lower().replace("_", " ")
    has_neg = bool(_NEG.search(t))
    has_pos = bool(_POS.search(_NEG.sub(" ", t)))
    if has_neg and not has_pos:
        return 0
    if has_pos and not has_neg:
        return 1
    return None


def parse_label(answer: str) -> int | None:
    """0 (no lump), 1 (lump) or ``None`` when the answer is empty, ambiguous or off-topic.

    An explicit ``Label: ...`` field wins; otherwise the first sentence must name exactly one
    side (e.g. "There is no lump" -> 0, "A hypoechoic mass is visible" -> 1).
    """
    if not answer or not answer.strip():
        return None
    m = _LABEL.search(answer.lower())
    if m:
        label = _classify_phrase(m.group(1))
        if label is not None:
            return label
    first = re.split(r"(?<=[.!?])\s|\n", answer.strip(), maxsplit=1)[0]
    return _classify_phrase(first)


def model_kind(model_path: str | Path) -> str:
    """``clip`` or ``generative`` from the folder's ``config.json``."""
    cfg_path = Path(model_path) / "config.json"
    if not cfg_path.is_file():
        raise BusClassifyError(f"{cfg_path}: not a local transformers model folder")
    mtype = json.loads(cfg_path.read_text()).get("model_type", "")
    return "clip" if mtype in CLIP_TYPES else "generative"


def clip_probs(
    model_path: str | Path, images: list, prompts: dict, device: str = "cpu", batch_size: int = 16
) -> np.ndarray:
    """``(N, 2)`` zero-shot probabilities (no_lump, lump) from a CLIP-style model."""
    from transformers import pipeline

    pipe = pipeline("zero-shot-image-classification", model=str(model_path), device=device)
    labels = [(c, p) for c in BINARY_CLASSES for p in prompts[c]]
    texts = [p for _, p in labels]
    out = np.zeros((len(images), len(BINARY_CLASSES)))
    results = pipe(images, candidate_labels=texts, hypothesis_template="{}", batch_size=batch_size)
    for i, res in enumerate(results):
        for r in res:
            c = next(c for c, p in labels if p == r["label"])
            out[i, BINARY_CLASSES.index(c)] += r["score"]
    return out


def generative_answers(
    model_path: str | Path,
    images: list,
    question: str,
    device: str = "cpu",
    max_new_tokens: int = 48,
) -> list[str]:
    """Greedy answers of an ``image-text-to-text`` model to ``question`` for each image."""
    from transformers import pipeline

    pipe = pipeline("image-text-to-text", model=str(model_path), device=device)
    answers = []
    for img in images:
        msgs = [
            {
                "role": "user",
                "content": [{"type": "image", "image": img}, {"type": "text", "text": question}],
            }
        ]
        res = pipe(
            text=msgs,
            max_new_tokens=max_new_tokens,
            return_full_text=False,
            generate_kwargs={"do_sample": False},
        )
        answers.append(str(res[0]["generated_text"]).strip())
    return answers


def _load_items(data: str | Path, split: str) -> list[tuple[str, int]]:
    data = Path(data)
    if data.suffix == ".csv":
        rows = [r for r in read_csv(data) if r["split"] == split]
        if not rows:
            raise BusClassifyError(f"{data}: no rows in split {split!r}")
        return [
            (
                r["path"],
                class_index(r["source_class"], "binary", str(data))
                if r.get("source_class")
                else r["label"],
            )
            for r in rows
        ]
    return [(s.ref, s.label) for s in discover(data, task="binary")]


def zero_shot(
    model_path: str | Path,
    data: str | Path,
    out: str | Path,
    kind: str = "auto",
    prompts_file: str | Path | None = None,
    split: str = "test",
    device: str = "cpu",
    max_new_tokens: int = 48,
    limit: int | None = None,
) -> dict:
    """Run a local VLM over ``data`` (folder or split CSV) and report the classifier metrics."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    prompts = load_prompts(prompts_file)
    kind = model_kind(model_path) if kind == "auto" else kind
    items = _load_items(data, split)[:limit]
    images = [read_sample(ref) for ref, _ in items]
    labels = np.array([y for _, y in items])
    name = f"zero-shot {kind} ({Path(model_path).name})"
    if kind == "clip":
        probs = clip_probs(model_path, images, prompts, device)
        metrics = write_report(out, name, labels, probs, BINARY_CLASSES)
        answers = [""] * len(items)
        parsed = list(probs.argmax(axis=1))
    elif kind == "generative":
        answers = generative_answers(
            model_path, images, prompts["question"], device, max_new_tokens
        )
        parsed = [parse_label(a) for a in answers]
        ok = np.array([p is not None for p in parsed])
        n_unparsed = int((~ok).sum())
        extra = {
            "unparsed": n_unparsed,
            "coverage": float(ok.mean()),
            "accuracy_counting_unparsed_as_wrong": float(
                np.mean([p == y for p, y in zip(parsed, labels)])
            ),
        }
        if ok.any():
            probs = np.eye(2)[[p for p in parsed if p is not None]]
            metrics = write_report(out, name, labels[ok], probs, BINARY_CLASSES, extra=extra)
        else:
            metrics = {
                k: None
                for k in (
                    "accuracy",
                    "f1_macro",
                    "roc_auc",
                    "pr_auc",
                    "ece",
                    "ece_calibrated",
                    "threshold",
                )
            }
            metrics["details"] = {"model": name, **extra}
            write_json(out / "metrics.json", metrics)
        log.info("%d of %d answers unparsed", n_unparsed, len(items))
    else:
        raise BusClassifyError(f"unknown zero-shot kind {kind!r}; use auto, clip or generative")
    write_csv(
        out / "answers.csv",
        [
            {
                "file": ref,
                "label": BINARY_CLASSES[y],
                "predicted": "unparsed" if p is None else BINARY_CLASSES[p],
                "answer": a,
            }
            for (ref, y), p, a in zip(items, parsed, answers)
        ],
        ["file", "label", "predicted", "answer"],
    )
    return metrics
