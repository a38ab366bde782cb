"""``python -m quality [--quick]``: our ``make train`` defaults against the plain transformers recipe.

For each corpus and seed, three runs with the same steps, batch size, sequence length and learning rate (each
corpus has its own steps and sequence length, ``quality/corpora.py``): ours (``python -m training``), the recipe as
the examples run it (10 % warm-up, weight decay 0.01), and the recipe with TrainingArguments' own defaults. On a CPU
where ours trains in bf16 autocast (training.device.CPU_BF16_KINDS) a fourth, ours-fp32 (mixed_precision=no): the
report then compares the two on dev and test. Runs go side by side (``--jobs``). Results go to
``bench/results/quality-<date>.json`` and a markdown table beside it.

Every variant fine-tunes the embedded MiniLM unless ``--model PATH`` names another base model (a local
``save_pretrained`` folder, e.g. the MPNet ``python -m bench.fetch_mpnet DEST`` fetches); its results are then
named ``quality-<date>-<model>.json`` and the report says which model it measured.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quality import jobs, ours, recipe, settings
from quality.corpora import CORPORA, Corpus, prepare
from quality.report import aggregate, markdown
from quality.settings import Setting
from quality.sources import SourceError

if TYPE_CHECKING:
    from bench.models import BenchModel

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
    parser.add_argument("--steps", type=int,
                        help="optimizer steps for every corpus (default: each corpus's own, in quality/corpora.py)")
    parser.add_argument("--seeds", type=int, nargs="+", help=f"seeds (default {list(settings.SEEDS)})")
    parser.add_argument("--max-seq-length", type=int,
                        help="tokens per sequence for every corpus (default: each corpus's own); a short one makes "
                             "truncation drop NER test words, which our windows still label")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                        help="runs side by side, each with its share of the cores (default: 2 where there are 2 "
                             "cores or more)")
    parser.add_argument("--variants", nargs="+", choices=(*ours.VARIANTS, *recipe.VARIANTS), default=None,
                        help="which variants (default: all, ours-fp32 only where ours trains in bf16; `--variants "
                             "ours --seeds 1` checks the served archive alone)")
    parser.add_argument("--model", metavar="PATH", default=None,
                        help="the base model every variant fine-tunes: a local save_pretrained folder (default: the "
                             "embedded MiniLM)")
    parser.add_argument("--work", type=Path, default=WORK, help="download and corpus cache (default quality/work)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the JSON and markdown go")
    args = parser.parse_args(argv)
    if args.steps is not None and args.steps < 1:
        parser.error(f"--steps {args.steps}: expected a positive number of steps")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: expected at least 1")
    if args.max_seq_length is not None and args.max_seq_length < 8:
        parser.error(f"--max-seq-length {args.max_seq_length}: expected at least 8")
    return args


def _seed_settings(args: argparse.Namespace, corpus: Corpus) -> tuple[list[Setting], dict[str, int] | None]:
    """One Setting per seed: the corpus's own steps and sequence length unless the command line sets them."""
    quick = args.quick
    steps = args.steps or (settings.QUICK_STEPS if quick else corpus.steps)
    seq = args.max_seq_length or corpus.max_seq_length
    seeds = args.seeds or (settings.QUICK_SEEDS if quick else settings.SEEDS)
    batch = settings.QUICK_BATCH_SIZE if quick else settings.BATCH_SIZE
    return ([Setting(steps, batch, seq, settings.LEARNING_RATE, s) for s in seeds],
            settings.QUICK_SIZES if quick else None)


def describe_corpus(corpus: Corpus, folder: Path, sums: dict[str, str], setting: Setting, model: BenchModel
                    ) -> dict[str, Any]:
    """What the report says of a corpus: source, licence, sizes, its setting and the words truncation drops."""
    from transformers import AutoTokenizer

    from training.data import load_dataset

    data = load_dataset(folder, corpus.task)
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    return {"task": corpus.task, "about": corpus.about,
            "package": f"{corpus.source.package}=={corpus.source.version}", "wheel_sha256": corpus.source.sha256,
            "licence": corpus.source.licence, "origin": corpus.source.origin,
            "setting": {"steps": setting.steps, "max_seq_length": setting.max_seq_length},
            "sizes": {"train": len(data.train), "dev": len(data.dev), "test": len(data.test)},
            "test_words": sum(len(r.text.split()) for r in data.test),
            "test_words_beyond_max_seq_length": recipe.words_beyond(tokenizer, data.test, setting.max_seq_length),
            "files_sha256": sums}


def base_model(name: str | None) -> BenchModel:
    """``--model`` as the bench reads it (bench/models.py), less our fine-tuned checkpoints: every variant here
    fine-tunes a base model, and the recipe would put a new head on top of ours."""
    from bench.models import resolve

    model = resolve(name)
    if model.task is not None:
        raise ValueError(f"--model {name}: a fine-tuned {model.task} checkpoint of ours (task_spec.json); make quality "
                         "fine-tunes a base model (a save_pretrained folder)")
    return model


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format=jobs.LOG_FORMAT)
    args = parse_args(argv)
    variants = tuple(args.variants or (*ours.variants_here(), *recipe.VARIANTS))
    corpora: dict[str, dict[str, Any]] = {}
    planned: list[jobs.Job] = []
    try:
        model = base_model(args.model)  # a ModelError is a ValueError: one line, exit 2, before any download
        for name in args.corpora:
            corpus = CORPORA[name]
            seed_settings, sizes = _seed_settings(args, corpus)
            folder, sums = prepare(corpus, args.work, sizes)
            corpora[name] = describe_corpus(corpus, folder, sums, seed_settings[0], model)
            planned += jobs.plan(name, corpus.task, folder, seed_settings, variants, model.model_name)
        runs = jobs.run_all(planned, args.jobs)
    except (SourceError, ours.TrainingFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, (SourceError, ValueError)) else 1
    for run in runs:
        served = run.pop("served", None)
        if served is not None:
            corpora[run["corpus"]]["served"] = served
    first = planned[0].setting
    shared = {"model": model.label, "batch_size": first.batch_size, "learning_rate": first.learning_rate,
              "seeds": sorted({job.setting.seed for job in planned}), "jobs": args.jobs,
              "threads_per_job": jobs.threads_per_job(args.jobs)}
    summary = aggregate(runs)
    table = markdown(summary, corpora, shared)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S") + ("" if model.embedded else f"-{model.slug()}") \
        + ("-quick" if args.quick else "")
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
