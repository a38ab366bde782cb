"""``python -m quality [--quick]``: our ``make train`` defaults against the plain transformers recipe.

For each corpus and seed, three runs with the same steps, batch size, sequence length and learning rate: ours
(``python -m training``), the recipe as the examples run it (10 % warm-up, weight decay 0.01), and the recipe with
TrainingArguments' own defaults. Results go to ``bench/results/quality-<date>.json`` and a markdown table beside it.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from quality import ours, recipe, settings
from quality.corpora import CORPORA, prepare
from quality.report import aggregate, markdown
from quality.settings import Setting
from quality.sources import SourceError

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "quality" / "work"
RESULTS = ROOT / "bench" / "results"
log = logging.getLogger("quality")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m quality", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {settings.QUICK_STEPS} steps, one seed, a tiny subset of each corpus")
    parser.add_argument("--corpora", nargs="+", choices=sorted(CORPORA), default=list(CORPORA),
                        help="which corpora (default: all)")
    parser.add_argument("--steps", type=int, help=f"optimizer steps (default {settings.STEPS})")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {list(settings.SEEDS)})")
    parser.add_argument("--max-seq-length", type=int, default=settings.MAX_SEQ_LENGTH,
                        help=f"tokens per sequence for every variant (default {settings.MAX_SEQ_LENGTH}); a short one "
                             "makes truncation drop NER test words, which our windows still label")
    parser.add_argument("--variants", nargs="+", choices=("ours", *recipe.VARIANTS), default=None,
                        help="which variants (default: all; `--variants ours --seeds 1` checks the served archive "
                             "alone)")
    parser.add_argument("--work", type=Path, default=WORK, help="download and corpus cache (default quality/work)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and markdown go")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps {args.steps}: expected a positive number of steps")
    if args.max_seq_length < 8:
        parser.error(f"--max-seq-length {args.max_seq_length}: expected at least 8")
    return args


def _settings(args: argparse.Namespace) -> tuple[list[Setting], dict[str, int] | None]:
    quick = args.quick
    steps = args.steps or (settings.QUICK_STEPS if quick else settings.STEPS)
    seeds = args.seeds or (settings.QUICK_SEEDS if quick else settings.SEEDS)
    batch = settings.QUICK_BATCH_SIZE if quick else settings.BATCH_SIZE
    return ([Setting(steps, batch, args.max_seq_length, settings.LEARNING_RATE, s) for s in seeds],
            settings.QUICK_SIZES if quick else None)


def measure_corpus(name: str, runs_of: list[Setting], sizes: dict[str, int] | None, work: Path,
                   variants: tuple[str, ...] = ("ours", *recipe.VARIANTS)
                   ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Prepare one corpus and run every variant and seed on it."""
    from transformers import AutoTokenizer

    from training.config import EMBEDDED_MODEL
    from training.data import load_dataset
    from training.run import resolve_model

    corpus = CORPORA[name]
    folder, sums = prepare(corpus, work, sizes)
    data = load_dataset(folder, corpus.task)
    model_path = resolve_model(EMBEDDED_MODEL)
    beyond = recipe.words_beyond(AutoTokenizer.from_pretrained(model_path), data.test, runs_of[0].max_seq_length)
    info = {"task": corpus.task, "about": corpus.about, "package": f"{corpus.source.package}=={corpus.source.version}",
            "wheel_sha256": corpus.source.sha256, "licence": corpus.source.licence, "origin": corpus.source.origin,
            "sizes": {"train": len(data.train), "dev": len(data.dev), "test": len(data.test)},
            "test_words": sum(len(r.text.split()) for r in data.test),
            "test_words_beyond_max_seq_length": beyond, "files_sha256": sums}
    runs = []
    for setting in runs_of:
        for variant in variants:
            log.info("%s: %s, seed %d, %d steps", name, variant, setting.seed, setting.steps)
            outcome = ours.run(corpus.task, folder, data, setting, check_served=setting is runs_of[0]) \
                if variant == "ours" else recipe.run(corpus.task, data, setting, variant, model_path)
            if outcome.served is not None:
                info["served"] = outcome.served
            runs.append({"corpus": name, "task": corpus.task, "variant": variant, "seed": setting.seed,
                         **asdict(outcome)})
    return info, runs


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    runs_of, sizes = _settings(args)
    corpora, runs = {}, []
    try:
        for name in args.corpora:
            corpora[name], found = measure_corpus(name, runs_of, sizes, args.work,
                                                  tuple(args.variants or ("ours", *recipe.VARIANTS)))
            runs += found
    except (SourceError, ours.TrainingFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (SourceError, ValueError)) else 1
    shared = {**asdict(runs_of[0]), "seeds": [s.seed for s in runs_of]}
    shared.pop("seed")
    summary = aggregate(runs)
    table = markdown(summary, corpora, shared)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S") + ("-quick" if args.quick else "")
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / f"quality-{stamp}.json"
    path.write_text(json.dumps({"setting": shared, "quick": args.quick, "corpora": corpora, "summary": summary,
                                "runs": runs}, indent=2), encoding="utf-8")
    path.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
