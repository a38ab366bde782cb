"""What a row of the task table holds: every fact about one task that training, serving and the launcher need."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tasks.batching import class_labels
from tasks.features import Feature, Target
from tasks.fields import Label, Record
from tasks.spec import TaskSpec

#: (spec, tokenizer, records, target or None) -> features
Encoder = Callable[[TaskSpec, Any, list[Record], "Target | None"], list[Feature]]
#: (features, padded width) -> the training targets of one batch, as the loss reads them
LabelBatch = Callable[[Sequence[Feature], int], np.ndarray]
#: (spec, records, features, outputs, all_scores) -> one prediction per record
Decoder = Callable[..., list[dict[str, Any]]]
#: (label names, gold labels, predictions) -> metrics (scalars and per-label tables)
Scorer = Callable[[Sequence[str], Sequence[Any], Sequence[dict[str, Any]]], dict[str, Any]]


def _no_check(record: Record) -> None:
    """Most tasks' labels need nothing from the rest of the record."""


@dataclass(frozen=True)
class TaskKind:
    """One task. Everything outside ``tasks/kinds/`` asks this row instead of comparing task names."""

    name: str
    #: "token" heads answer per token (AutoModelForTokenClassification), "sequence" heads per feature
    head: str
    #: ``config.problem_type`` for sequence heads (drives the loss in transformers)
    problem_type: str | None
    #: the text fields of a record, in a training file's columns and a request's keys (``bbox`` comes on top)
    inputs: tuple[str, ...]
    #: the ``labels`` column -> the gold label; a RecordError(field="labels") says what is wrong
    parse_label: Callable[[str], Label]
    #: the names a gold label uses, to collect the label set (none for regression)
    label_names: Callable[[Label], list[str]]
    #: the gold label -> the training target, given the spec's label order
    target: Callable[[Sequence[str], Label], Any]
    encode: Encoder
    decode: Decoder
    score: Scorer
    #: the scalar scores ``score`` returns: the names training logs and SageMaker's MetricDefinitions match
    metric_names: tuple[str, ...]
    #: the dev metric that picks the best checkpoint and gates quantisation
    primary_metric: str
    greater_is_better: bool
    #: whether the model has named labels (``id2label``); regression answers one number instead
    has_labels: bool = True
    #: labels a model always has, seen in train or not (NER's ``O``)
    implicit_labels: tuple[str, ...] = ()
    #: distinct labels train.csv must have for the task to make sense
    min_labels: int = 0
    #: whether word boxes (LayoutLM) can be read
    takes_bbox: bool = True
    #: a whole-record check of a parsed label (NER: one label per word); raises RecordError
    check_label: Callable[[Record], None] = _no_check
    #: the label set in the order the model's outputs use
    order_labels: Callable[[set[str]], tuple[str, ...]] = lambda names: tuple(sorted(names))
    #: after training: (spec, dev gold labels, dev predictions with every score) -> the spec serving uses
    #: (multilabel tunes its per-label thresholds); None: nothing to tune
    tune: Callable[[TaskSpec, Sequence[Any], Sequence[dict[str, Any]]], TaskSpec] | None = None
    #: whether a training row (its columns by name) is unmistakably this task's, so that a file whose every row
    #: fits it, loaded for another task, is refused as "is the task right?" (NER: one BIO tag per word)
    fits_row: Callable[[Mapping[str, str]], bool] | None = None
    #: the model card: Hugging Face pipeline tag, the test plot to draw, one answer as users see it
    pipeline_tag: str = "text-classification"
    plot: str = "confusion_matrix"
    example_answer: str = '{"pred": "sports", "proba": 0.97}'
    #: how a batch's training targets are stacked (``tasks.batching``): class ids unless the row says otherwise
    label_batch: LabelBatch = class_labels

    def num_outputs(self, labels: Sequence[str]) -> int:
        """The model's output width: one per label, or one number (regression)."""
        return len(labels) if self.has_labels else 1
