"""Fit the offline engine's evidence model on the development half of the blind-written suites.

For every development question the engine's own retrieval builds the context; every candidate sentence
gets its features (rag/backends/offline_evidence.py); a sentence is a positive when it is (part of) the
question's written evidence and holds an expected answer. A logistic regression over the features gives
the weights; the threshold is the one that best trades answered questions against refusals of the
unanswerable ones (the harmonic mean of answer accuracy and refusal recall on the development suites).

    python scripts/fit_offline_model.py            # report
    python scripts/fit_offline_model.py --write    # also write WEIGHTS, BIAS, THRESHOLD into the module

Only the development corpora are read (scripts/build_eval_suites.py: DEV, and the odd-numbered seed
questions); the held-out half is never looked at here.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

from build_eval_suites import DEV, SEED, _seed_half  # noqa: E402

from rag.answer import prepare  # noqa: E402
from rag.backends import offline_evidence as ev  # noqa: E402
from rag.backends.offline import _asks_for_names  # noqa: E402
from rag.backends.offline_question import parse_question  # noqa: E402
from rag.chunk import Chunker  # noqa: E402
from rag.config import load_settings  # noqa: E402
from rag.extract import entities_of, split_sentences  # noqa: E402
from rag.index import SQLiteIndex, index_paths  # noqa: E402
from rag.normalize import normalize  # noqa: E402

MODULE = ROOT / "rag" / "backends" / "offline_evidence.py"


def corpus_path(name: str) -> Path:
    return ROOT / ("seeds" if name == SEED else f"evals/corpora/{name}")


def questions(name: str) -> list[dict]:
    data = yaml.safe_load((ROOT / "evals" / "data" / f"{name}.yaml").read_text(encoding="utf-8"))
    out = [q for q in data["questions"] if name != SEED or _seed_half(q["id"], "dev")]
    return out


def label(sentence: str, q: dict) -> bool:
    if not q.get("answerable", True):
        return False
    text = normalize(sentence)
    evidence = [normalize(e) for e in q.get("evidence") or []]
    overlaps = any(text[:60] in e or e[:60] in text for e in evidence)
    holds = any(normalize(str(a)) in text for group in q.get("answers") or [] for a in group)
    return overlaps and holds


def collect() -> list[dict]:
    settings = load_settings(backend="offline")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in DEV + [SEED]:
            store = SQLiteIndex(Path(tmp) / f"{name}.db", create=True)
            index_paths([corpus_path(name)], store, Chunker())
            for q in questions(name):
                prepared = prepare(q["question"], store=store, settings=settings)
                sentences = [s for s in split_sentences(prepared.context) if not s.is_heading]
                entities = entities_of(prepared.context)
                pq = parse_question(q["question"], entities)
                if pq.intent == "summary" or (pq.intent == "list" and _asks_for_names(pq)) or \
                        (pq.intent == "comparison" and len(pq.subjects) >= 2) or pq.unknown_names:
                    continue
                scored = ev.score_sentences(pq, sentences, entities)
                rows.append({"id": q["id"], "answerable": q.get("answerable", True), "candidates": [
                    {"x": [e.features[f] for f in ev.FEATURES], "eligible": e.eligible, "y": label(e.sentence.text, q)}
                    for e in scored]})
    return rows


def fit_pointwise(rows: list[dict], *, l2: float = 20.0, steps: int = 4000, lr: float = 0.1) -> tuple[np.ndarray, float]:
    """Logistic regression over every eligible sentence: evidence or not (positives weighted up to balance)."""
    xs, ys = [], []
    for r in rows:
        for c in r["candidates"]:
            if c["eligible"]:
                xs.append(c["x"])
                ys.append(1.0 if c["y"] else 0.0)
    x, y = np.array(xs), np.array(ys)
    w, b = np.zeros(x.shape[1]), 0.0
    pos = max(1.0, y.sum())
    sample = np.where(y == 1, (len(y) - pos) / pos, 1.0)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * sample
        w -= lr * (x.T @ g / len(y) + l2 * w / len(y))
        b -= lr * g.mean()
    return w, float(b)


def fit(rows: list[dict], *, l2: float = 0.05, steps: int = 3000, lr: float = 0.2) -> tuple[np.ndarray, float]:
    """Listwise: for each answerable question, the softmax over its eligible sentences should put its mass on the
    evidence sentences (the engine picks the best sentence, so this is the objective that matches). The bias
    does not change a ranking; it is set so that a typical evidence sentence scores about 0.5 in probability."""
    groups = []
    for r in rows:
        cands = [c for c in r["candidates"] if c["eligible"]]
        if r["answerable"] and any(c["y"] for c in cands) and len(cands) > 1:
            groups.append((np.array([c["x"] for c in cands]), np.array([1.0 if c["y"] else 0.0 for c in cands])))
    w = np.zeros(len(ev.FEATURES))
    for _ in range(steps):
        grad = l2 * w
        for x, y in groups:
            s = x @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            q = y * p
            q /= q.sum()
            grad += x.T @ (p - q) / len(groups)
        w -= lr * grad
    positives = np.concatenate([x[y == 1] @ w for x, y in groups])
    return w, float(-np.median(positives))


def decide(rows: list[dict], w: np.ndarray, b: float, threshold: float) -> dict[str, float]:
    right_answers = answers = right_refusals = refusals = 0
    for r in rows:
        cands = [c for c in r["candidates"] if c["eligible"]]
        probs = [1 / (1 + np.exp(-(np.array(c["x"]) @ w + b))) for c in cands]
        best = int(np.argmax(probs)) if probs else None
        answered = best is not None and probs[best] >= threshold
        if r["answerable"]:
            answers += 1
            right_answers += bool(answered and cands[best]["y"])
        else:
            refusals += 1
            right_refusals += not answered
    return {"answer_accuracy": right_answers / max(1, answers), "refusal_recall": right_refusals / max(1, refusals),
            "answerable": answers, "unanswerable": refusals}


def calibrate(thresholds: list[float]) -> list[tuple[float, float, float]]:
    """(threshold, answer accuracy, refusal recall) of the whole engine on the development suites, per threshold."""
    from rag.backends import get_backend
    from rag.evaluate.loading import load_suites
    from rag.evaluate.runner import Env, build_indexes, run_cases

    suites = load_suites([ROOT / "evals" / "qa_dev.yaml", ROOT / "evals" / "chat_dev.yaml"])
    selected = [(s, c) for s in suites for c in s.suite.cases]
    settings = load_settings(backend="offline")
    corpora = {n: [str(ROOT / p) for p in paths] for s in suites for n, paths in s.suite.corpora.items()}
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        env = Env(settings=settings, backend=get_backend(settings), indexes=build_indexes(corpora, settings, Path(tmp)))
        for t in thresholds:
            ev.THRESHOLD = t
            counts = [0, 0, 0, 0]
            for result in run_cases(selected, env):
                for m in result.measures:
                    for a in m.answers:
                        if a.expected_refused is False:
                            counts[0] += 1
                            counts[1] += a.passed
                        elif a.expected_refused is True:
                            counts[2] += 1
                            counts[3] += a.refused
            out.append((t, counts[1] / max(1, counts[0]), counts[3] / max(1, counts[2])))
        env.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="write the fitted weights and threshold into offline_evidence.py")
    parser.add_argument("--method", choices=["pointwise", "listwise"], default="pointwise",
                        help="logistic regression per sentence, or a softmax per question (default: pointwise, which "
                             "measured better on the development suites)")
    args = parser.parse_args(argv)
    rows = collect()
    w, b = fit_pointwise(rows) if args.method == "pointwise" else fit(rows)
    weights = {f: round(float(v), 2) for f, v in zip(ev.FEATURES, w)}
    ev.WEIGHTS, ev.BIAS = weights, round(float(b), 2)
    print(f"fitted on {len(rows)} development questions")
    print("WEIGHTS =", weights, "\nBIAS =", round(float(b), 2))
    grid = calibrate([round(x, 2) for x in np.arange(0.3, 0.91, 0.05)])
    for t, acc, refusal in grid:
        print(f"threshold {t:.2f}: answer accuracy {acc:.3f}, refusal recall {refusal:.3f}")
    # Both targets count: the harmonic mean of answer accuracy and refusal recall picks the balanced threshold.
    threshold = max(grid, key=lambda g: (2 * g[1] * g[2] / max(1e-9, g[1] + g[2]), -g[0]))[0]
    print(f"chosen threshold {threshold:.2f}")
    if args.write:
        text = MODULE.read_text(encoding="utf-8")
        text = re.sub(r"^WEIGHTS = \{.*?\}\n", "WEIGHTS = " + repr(weights) + "\n", text, count=1, flags=re.S | re.M)
        text = re.sub(r"^BIAS = .*$", f"BIAS = {round(float(b), 2)}", text, count=1, flags=re.M)
        text = re.sub(r"^THRESHOLD = [0-9.]+", f"THRESHOLD = {threshold:.2f}", text, count=1, flags=re.M)
        MODULE.write_text(text, encoding="utf-8")
        print(f"written to {MODULE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
