"""People would rather look than read: a model card and a few plots, generated from metrics.json and the log."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from tasks.kinds import task_kind

PLOTS_DIR = "report"


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_losses(log_history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    dev = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e]
    fig, ax = plt.subplots(figsize=(6, 4))
    for points, name in ((train, "train"), (dev, "dev")):
        if points:
            ax.plot(*zip(*points), marker="o" if name == "dev" else None, label=f"{name} loss")
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title("Loss"), ax.legend()
    _save(fig, path)


def _plot_confusion(test: dict[str, Any], path: Path) -> None:
    import matplotlib.pyplot as plt

    labels, matrix = test["confusion_matrix"]["labels"], test["confusion_matrix"]["matrix"]
    fig, ax = plt.subplots(figsize=(1.2 * len(labels) + 2, 1.2 * len(labels) + 1.5))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right"), ax.set_yticks(range(len(labels)), labels)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center")
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title("Confusion matrix (test)")
    _save(fig, path)


def _plot_per_label(scores: dict[str, dict[str, float]], path: Path, title: str) -> None:
    import matplotlib.pyplot as plt

    names = list(scores)
    fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(names) + 2), 4))
    ax.bar(names, [scores[n]["f1"] for n in names])
    ax.set_ylim(0, 1), ax.set_ylabel("F1"), ax.set_title(title)
    ax.tick_params(axis="x", rotation=45)
    _save(fig, path)


def _plot_scatter(predictions: list[dict[str, Any]], path: Path) -> None:
    import matplotlib.pyplot as plt

    y_true = [p["gold"] for p in predictions]
    y_pred = [p["pred"] for p in predictions]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.scatter(y_true, y_pred, s=12, alpha=0.7)
    lo, hi = min(y_true + y_pred), max(y_true + y_pred)
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--")
    ax.set_xlabel("true"), ax.set_ylabel("predicted"), ax.set_title("Predicted vs true (test)")
    _save(fig, path)


def _plot_test_f1(test: dict[str, Any], path: Path) -> None:
    """F1 per label (multilabel) or per entity type (NER), whichever table the task's scores carry."""
    table, title = ((test["per_label"], "F1 per label (test)") if "per_label" in test
                    else (test["per_type"], "F1 per entity type (test)"))
    _plot_per_label(table, path, title)


#: the test plot a task's row asks for (``TaskKind.plot``) -> (file, how to draw it from test scores, predictions)
TEST_PLOTS: dict[str, tuple[str, Callable[[dict[str, Any], list[dict[str, Any]], Path], None]]] = {
    "confusion_matrix": ("confusion_matrix.png", lambda test, preds, path: _plot_confusion(test, path)),
    "per_label_f1": ("per_label_f1.png", lambda test, preds, path: _plot_test_f1(test, path)),
    "pred_vs_true": ("pred_vs_true.png", lambda test, preds, path: _plot_scatter(preds, path)),
}


def write_plots(out: Path, task: str, metrics: dict[str, Any], log_history: list[dict[str, Any]],
                test_predictions: list[dict[str, Any]]) -> list[str]:
    """The loss curve and the task's test plot in ``out/report``; the file names made."""
    import matplotlib

    matplotlib.use("Agg")
    folder = out / PLOTS_DIR
    folder.mkdir(exist_ok=True)
    _plot_losses(log_history, folder / "loss.png")
    made = ["loss.png"]
    name, draw = TEST_PLOTS[task_kind(task).plot]
    draw(metrics["test"], test_predictions, folder / name)
    made += [p.name for p in sorted(folder.iterdir()) if p.name != "loss.png"]
    return made


def _flat(metrics: dict[str, Any]) -> list[tuple[str, float]]:
    return [(k, v) for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]


def _request_example(inputs: tuple[str, ...]) -> str:
    """One request record with the task's text fields, e.g. ``{"text": "your text here"}``."""
    return json.dumps({name: f"your {name.replace('_', ' ')} here" for name in inputs})


def model_card(spec: dict[str, Any], info: dict[str, Any], metrics: dict[str, Any], plots: list[str]) -> str:
    """A Hugging Face-style README.md for the checkpoint."""
    task = spec["task"]
    kind = task_kind(task)
    request = _request_example(kind.inputs)
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in _flat(metrics["test"]))
    hps = "\n".join(f"| {k} | `{v}` |" for k, v in info["hyperparameters"].items())
    labels = ", ".join(f"`{label}`" for label in spec["labels"]) or "(regression: one number)"
    images = "\n".join(f"![{p}]({PLOTS_DIR}/{p})" for p in plots)
    sizes = info["data_sizes"]
    return f"""---
library_name: transformers
pipeline_tag: {kind.pipeline_tag}
base_model: {info["base_model"]}
tags: [smtx, {task}]
---

# {task} model fine-tuned from {info["base_model"]}

- **Task:** `{task}` ({spec["model_type"]} architecture, max {spec["max_seq_length"]} tokens per window,
  stride {spec["stride"]}, boxes {"used" if spec["use_bbox"] else "not used"})
- **Inputs:** {", ".join(f"`{n}`" for n in spec.get("model_inputs") or [])}; pre-split words
  {"given a prefix space" if spec.get("add_prefix_space") else "tokenised as the tokenizer splits them"}
- **Labels:** {labels}
- **Data:** {sizes["train"]} train, {sizes["dev"]} dev, {sizes["test"]} test records
- **Training:** {info["train_seconds"]:.1f} s, {info["train_samples_per_second"]:.1f} samples/s

## Test metrics

| metric | value |
|---|---|
{rows}

Scores are computed from the same decoding the endpoint runs (NER per word, multilabel with the per-label
thresholds saved in `task_spec.json`).

## Hyperparameters

| name | value |
|---|---|
{hps}

## Calling the endpoint

```
curl -s http://127.0.0.1:8080/invocations -H 'Content-Type: application/json' \\
     -d '{{"data": [{request}]}}'
```

Each prediction looks like `{kind.example_answer}`. Send `application/jsonlines` (one record such as
`{request}` per line) to get one answer per line.

## Plots

{images}
"""


def write_report(out: Path, spec: dict[str, Any], info: dict[str, Any], metrics: dict[str, Any],
                 log_history: list[dict[str, Any]], test_predictions: list[dict[str, Any]]) -> None:
    plots = write_plots(out, spec["task"], metrics, log_history, test_predictions)
    (out / "README.md").write_text(model_card(spec, info, metrics, plots), encoding="utf-8")
    (out / "trainer_log.json").write_text(json.dumps(log_history, indent=1), encoding="utf-8")
