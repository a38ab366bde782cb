"""The plain transformers fine-tuning recipe, written the way the examples (run_ner.py, run_glue.py) run it.

Deliberately none of our code on the model side: labels sorted as the examples sort them, the first sub-token of
each word labelled and the rest ignored (-100), truncation at the sequence length and no windows, the stock
collators, no evaluation during training and the final weights kept. Only the test scoring is shared with our
pipeline (``tasks.metrics``, pure seqeval / scikit-learn), so both sides are scored by the same function; NER
words that truncation dropped are predicted 'O'.
"""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from quality.settings import Setting
from tasks.kinds import task_kind
from training.data import Dataset, gold_label

#: the TrainingArguments each variant passes; everything else is TrainingArguments' own default
VARIANTS: dict[str, dict[str, Any]] = {
    # the settings the token-classification example is usually run with; transformers 5 reads a warmup_steps
    # below 1 as a ratio of the steps (it has no warmup_ratio any more)
    "recipe": {"warmup_steps": 0.1, "weight_decay": 0.01},
    "recipe-defaults": {},
}


#: one encoded example: the tokenizer's columns and its ``labels``, as the Hugging Face examples make them
Example = dict[str, Any]


@dataclass
class Outcome:
    metrics: dict[str, Any]
    #: test words (NER) whose first sub-token lies beyond max_seq_length, so the model never saw them
    dropped_words: int
    train_seconds: float
    wall_seconds: float
    #: ours only, first seed: the served answers' scores against training's (quality/served.py)
    served: dict[str, Any] | None = None
    #: ours only: training's scores on dev (metrics.json), and the precision it trained in (no: fp32)
    dev_metrics: dict[str, Any] | None = None
    precision: str | None = None


def _encode_ner(tokenizer: Any, words: list[list[str]], tags: list[list[int]] | None, max_len: int) -> list[Example]:
    enc = tokenizer(words, truncation=True, max_length=max_len, is_split_into_words=True)
    rows = []
    for i in range(len(words)):
        row = {k: enc[k][i] for k in enc.keys()}
        ids, previous, labels = enc.word_ids(i), None, []
        for w in ids:  # label_all_tokens=False, as run_ner.py defaults
            labels.append(-100 if w is None or w == previous else (tags[i][w] if tags else 0))
            previous = w
        row["labels"] = labels
        rows.append(row)
    return rows


def _encode_text(tokenizer: Any, texts: list[str], labels: list[Any], max_len: int) -> list[Example]:
    enc = tokenizer(texts, truncation=True, max_length=max_len)
    return [{**{k: enc[k][i] for k in enc.keys()}, "labels": labels[i]} for i in range(len(texts))]


def _examples(task: str, tokenizer: Any, records: Sequence[Any], names: list[str], max_len: int) -> list[Example]:
    index = {n: i for i, n in enumerate(names)}
    if task == "ner":
        words = [r.text.split() for r in records]
        return _encode_ner(tokenizer, words, [[index[t] for t in r.label] for r in records], max_len)
    if task == "classif":
        return _encode_text(tokenizer, [r.text for r in records], [index[r.label] for r in records], max_len)
    hot = [[1.0 if n in r.label else 0.0 for n in names] for r in records]
    return _encode_text(tokenizer, [r.text for r in records], hot, max_len)


def _label_names(task: str, data: Dataset) -> list[str]:
    """Sorted label names seen in train, as the examples' get_label_list does."""
    label_names = task_kind(task).label_names  # classif: the one class; ner and multilabel: the list
    return sorted({n for r in data.train for n in label_names(gold_label(r))})


def _predictions(task: str, logits: np.ndarray, examples: list[Example], records: Sequence[Any], names: list[str]
                 ) -> tuple[list[dict[str, Any]], int]:
    """Word- or record-level predictions in our shape ({"pred": ...}) and the count of dropped test words."""
    if task == "classif":
        return [{"pred": names[int(k)]} for k in logits.argmax(-1)], 0
    if task == "multilabel-classif":
        probs = 1.0 / (1.0 + np.exp(-logits))
        return [{"pred": [n for j, n in enumerate(names) if p[j] >= 0.5]} for p in probs], 0
    preds, dropped = [], 0
    for i, record in enumerate(records):
        n_words = len(record.text.split())
        # the examples' encoding marks each word's first sub-token with a label id (not -100)
        firsts = [pos for pos, lab in enumerate(examples[i]["labels"]) if lab != -100]
        labels = [names[int(logits[i, pos].argmax())] for pos in firsts]
        dropped += n_words - len(labels)
        preds.append({"pred": labels + ["O"] * (n_words - len(labels))})
    return preds, dropped


def run(task: str, data: Dataset, setting: Setting, variant: str, model_path: str) -> Outcome:
    """Fine-tune ``model_path`` on ``data`` with the recipe ``variant`` and score the test split."""
    from transformers import (
        AutoModelForSequenceClassification,
        AutoModelForTokenClassification,
        AutoTokenizer,
        DataCollatorForTokenClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
        set_seed,
    )

    started = time.perf_counter()
    set_seed(setting.seed)  # before the head is initialised, as the examples do
    names = _label_names(task, data)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    extra = {"problem_type": "multi_label_classification"} if task == "multilabel-classif" else {}
    auto = AutoModelForTokenClassification if task == "ner" else AutoModelForSequenceClassification
    model = auto.from_pretrained(model_path, num_labels=len(names), id2label=dict(enumerate(names)),
                                 label2id={n: i for i, n in enumerate(names)}, **extra)
    collator = (DataCollatorForTokenClassification(tokenizer) if task == "ner" else DataCollatorWithPadding(tokenizer))
    train = _examples(task, tokenizer, data.train, names, setting.max_seq_length)
    # the test gold may hold a label train lacks; its encoding only needs positions, so unknown labels map to 0
    test_records = data.test
    test = _encode_ner(tokenizer, [r.text.split() for r in test_records], None, setting.max_seq_length) \
        if task == "ner" else _encode_text(tokenizer, [r.text for r in test_records], [0] * len(test_records),
                                           setting.max_seq_length)
    with tempfile.TemporaryDirectory(prefix="quality-recipe-") as out:
        args = TrainingArguments(
            output_dir=out, max_steps=setting.steps, per_device_train_batch_size=setting.batch_size,
            per_device_eval_batch_size=32, learning_rate=setting.learning_rate, seed=setting.seed,
            save_strategy="no", report_to=[], disable_tqdm=True, **VARIANTS[variant])
        trainer = Trainer(model=model, args=args, train_dataset=train, data_collator=collator)
        result = trainer.train()
        if task != "ner":
            for row in test:
                row.pop("labels")
        # the Trainer takes any sized, indexable rows (as train_dataset above); its annotation says torch Dataset
        logits = trainer.predict(test).predictions  # type: ignore[arg-type]
    logits = logits[0] if isinstance(logits, tuple) else logits
    preds, dropped = _predictions(task, np.asarray(logits), test, test_records, names)
    metrics = task_kind(task).score(_score_labels(task, data, names), [r.label for r in test_records], preds)
    return Outcome(metrics=metrics, dropped_words=dropped, train_seconds=float(result.metrics["train_runtime"]),
                   wall_seconds=time.perf_counter() - started)


def _score_labels(task: str, data: Dataset, names: list[str]) -> list[str]:
    """The label list the scorer reports per class: every name in train and test (a test-only class counts)."""
    if task == "ner":
        return names
    test = {n for r in data.test for n in task_kind(task).label_names(gold_label(r))}
    return sorted(set(names) | test)


def words_beyond(tokenizer: Any, records: Sequence[Any], max_len: int) -> int:
    """Test words whose first sub-token falls past ``max_len`` (special tokens included): what truncation drops."""
    words = [r.text.split() for r in records]
    enc = tokenizer(words, truncation=False, is_split_into_words=True, add_special_tokens=False)
    dropped = 0
    for i, ws in enumerate(words):
        first: dict[int, int] = {}
        for pos, w in enumerate(enc.word_ids(i)):
            if w is not None:
                first.setdefault(w, pos)
        dropped += sum(1 for w in range(len(ws)) if first.get(w, 0) >= max_len - 2)
    return dropped
