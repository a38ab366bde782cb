"""Seeds -> mean and spread per variant, and the markdown table: differences and ratios first, then absolutes."""
from __future__ import annotations

import statistics
from typing import Any, Sequence

from quality import ours, recipe

#: the test metrics reported per task (the first one is the headline, compared across variants)
METRICS: dict[str, tuple[str, ...]] = {
    "ner": ("f1",),
    "classif": ("accuracy", "f1_macro"),
    "multilabel-classif": ("f1_micro",),
}
VARIANTS = (*ours.VARIANTS, *recipe.VARIANTS)
#: ours in bf16 autocast may differ from ours-fp32 by this much on dev (points) and still train in bf16 by default
BF16_TOLERANCE_POINTS = 0.3


def summarise(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation (0 for one seed) and range, in points (x100)."""
    points = [100.0 * v for v in values]
    return {"mean": statistics.fmean(points), "std": statistics.stdev(points) if len(points) > 1 else 0.0,
            "min": min(points), "max": max(points), "n": len(points)}


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{corpus: {variant: {metric: summary, "train_seconds": mean, "wall_seconds": mean}}}``."""
    out: dict[str, dict[str, Any]] = {}
    for run in runs:
        out.setdefault(run["corpus"], {}).setdefault(run["variant"], []).append(run)
    summary: dict[str, dict[str, Any]] = {}
    for corpus, by_variant in out.items():
        summary[corpus] = {}
        for variant, rows in by_variant.items():
            task = rows[0]["task"]
            entry: dict[str, Any] = {m: summarise([r["metrics"][m] for r in rows]) for m in METRICS[task]}
            entry["train_seconds"] = statistics.fmean(r["train_seconds"] for r in rows)
            entry["wall_seconds"] = statistics.fmean(r["wall_seconds"] for r in rows)
            if all(r.get("dev_metrics") for r in rows):  # ours: training's dev scores, and its precision
                entry["dev"] = {m: summarise([r["dev_metrics"][m] for r in rows]) for m in METRICS[task]}
                entry["precision"] = rows[0]["precision"]
            summary[corpus][variant] = entry
    return summary


def _diff_row(corpus: str, metric: str, entry: dict[str, Any]) -> str:
    ours = entry["ours"][metric]
    cells = []
    for other in ("recipe", "recipe-defaults"):
        if other not in entry:
            cells += ["", ""]
            continue
        theirs = entry[other][metric]
        diff = ours["mean"] - theirs["mean"]
        spread = max(ours["std"], theirs["std"])
        flag = " **" if abs(diff) > spread and ours["n"] > 1 else ""
        ratio = ours["mean"] / theirs["mean"] if theirs["mean"] else float("nan")
        cells += [f"{diff:+.2f}{flag}", f"{ratio:.3f}"]
    return f"| {corpus} | {metric} | " + " | ".join(cells) + f" | {ours['std']:.2f} |"


def precision_lines(summary: dict[str, dict[str, Any]], corpora: dict[str, dict[str, Any]]) -> list[str]:
    """Ours (our default precision) against ours-fp32, dev and test, where both ran: the figures that keep bf16
    as the CPU's default, or take its kind out of training.device.CPU_BF16_KINDS."""
    rows = []
    for corpus, entry in summary.items():
        auto, fp32 = entry.get("ours", {}), entry.get("ours-fp32", {})
        if "dev" not in auto or "dev" not in fp32:
            continue
        for m in METRICS[corpora[corpus]["task"]]:
            dev = auto["dev"][m]["mean"] - fp32["dev"][m]["mean"]
            test = auto[m]["mean"] - fp32[m]["mean"]
            verdict = "within" if abs(dev) <= BF16_TOLERANCE_POINTS else "OUTSIDE"
            rows.append(f"| {corpus} | {m} | {auto['precision']} | {auto['dev'][m]['mean']:.2f} | "
                        f"{fp32['dev'][m]['mean']:.2f} | {dev:+.2f} ({verdict} ±{BF16_TOLERANCE_POINTS}) | "
                        f"{test:+.2f} |")
    if not rows:
        return []
    return ["", "| corpus | metric | ours' precision | ours dev | ours-fp32 dev | dev difference | test difference "
            "|", "|---|---|---|---|---|---|---|", *rows,
            "", "Ours trains with our defaults (mixed_precision=auto); ours-fp32 the same with mixed_precision=no. "
            "Differences in points, ours − ours-fp32, means over the seeds."]


def markdown(summary: dict[str, dict[str, Any]], corpora: dict[str, dict[str, Any]], setting: dict[str, Any]) -> str:
    """The report: differences and ratios (ours vs each recipe), then every variant's mean ± std and times."""
    each = ", ".join(f"{name} {info['setting']['steps']} steps at sequence {info['setting']['max_seq_length']}"
                     for name, info in corpora.items())
    model = f" Model: {setting['model']}." if "model" in setting else ""
    lines = [f"Batch {setting['batch_size']}, learning rate {setting['learning_rate']}, seeds {setting['seeds']}; "
             f"{each}; {setting['jobs']} run(s) at a time, {setting['threads_per_job']} thread(s) each; test "
             f"metrics in points.{model}", "",
             "| corpus | metric | ours − recipe | ours / recipe | ours − recipe defaults | ours / recipe defaults "
             "| ours std |", "|---|---|---|---|---|---|---|"]
    for corpus, entry in summary.items():
        if "ours" in entry:
            lines += [_diff_row(corpus, m, entry) for m in METRICS[corpora[corpus]["task"]]]
    lines += ["", "** the difference is larger than the spread (std) between seeds of either side."]
    lines += [*precision_lines(summary, corpora), ""]
    for corpus, info in corpora.items():
        served = info.get("served")
        if served is not None:
            within = ("" if served.get("tolerance", 0) <= 1e-9 else
                      f" within {served['tolerance']:g} (int8 and bf16 answers depend on the batching)")
            verdict = (f"the model card's test score for that path{within}, and the card's fp32 score is "
                       "training's own evaluation" if served["equal"] else
                       f"DIFFERENT: {served.get('differing') or served}")
            lines.append(f"- {corpus}: the test split sent through `/invocations` of the served archive "
                         f"({served['runtime']}, what auto serves on this CPU) scores {verdict}.")
    lines += ["",
              "| corpus | variant | metric | mean ± std (min–max) | train s | wall s | test words dropped |",
              "|---|---|---|---|---|---|---|"]
    for corpus, entry in summary.items():
        for variant in VARIANTS:
            if variant not in entry:
                continue
            for m in METRICS[corpora[corpus]["task"]]:
                s = entry[variant][m]
                dropped = 0 if variant in ours.VARIANTS and corpora[corpus]["task"] == "ner" else \
                    corpora[corpus]["test_words_beyond_max_seq_length"]
                lines.append(f"| {corpus} | {variant} | {m} | {s['mean']:.2f} ± {s['std']:.2f} "
                             f"({s['min']:.2f}–{s['max']:.2f}) | {entry[variant]['train_seconds']:.0f} "
                             f"| {entry[variant]['wall_seconds']:.0f} | {dropped} |")
    return "\n".join(lines) + "\n"
