"""Drift between what an endpoint answers and what the model answered on its own test split (pure: no AWS here).

Three features are compared, each by a population-stability index (PSI):

- ``label``: the predicted labels. A class name (classification), each chosen label (multilabel), each word's
  entity type with the B-/I- prefix dropped, ``O`` kept (NER), or the value itself (regression, binned as below).
- ``confidence``: every ``proba`` the answers carry (one per record, per chosen label, or per word).
- ``input_words``: words per record (``text`` plus ``text_pair``, split on white space).

Binning: a categorical feature has one bin per value seen on either side. A numeric one has ten bins cut at the
reference's deciles (repeated cut points merged), the outer two open-ended, so a value past the test split's range
still lands in a bin. ``PSI = sum((a - e) * ln(a / e))`` over the bins, with ``e`` / ``a`` the reference / current
shares; a share of 0 is raised to ``EPSILON`` so an empty bin costs a large but finite amount. Common reading:
below 0.1 stable, 0.1-0.25 moderate, above 0.25 a real shift; the default threshold is 0.2.

The current side comes from SageMaker capture files (``captureData.endpointInput`` / ``endpointOutput``, text or
BASE64) or from a ``transform --local`` input and output pair.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from launcher.errors import SettingError

EPSILON = 1e-4
DEFAULT_THRESHOLD = 0.2
#: deciles: the cut points of a numeric feature's bins
_CUTS = tuple(i / 10 for i in range(1, 10))
#: the quantiles shown for a numeric feature
QUANTILES = (0.1, 0.5, 0.9)


@dataclass
class Sample:
    """The features of one side (reference or current), as flat lists."""

    labels: list[Any] = field(default_factory=list)
    confidences: list[float] = field(default_factory=list)
    words: list[float] = field(default_factory=list)
    records: int = 0

    def add(self, record: Any, prediction: Any) -> None:
        """One record (its text fields; None when unknown) and the model's answer for it."""
        self.records += 1
        if isinstance(record, dict):
            self.words.append(float(sum(len(str(record.get(key) or "").split()) for key in ("text", "text_pair"))))
        if not isinstance(prediction, dict) or "pred" not in prediction:
            return  # an error answer: counted as a record, no prediction to compare
        self.labels.extend(_labels(prediction["pred"]))
        proba = prediction.get("proba")
        values = proba if isinstance(proba, list) else [proba]
        self.confidences.extend(float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool))


def _labels(pred: Any) -> list[Any]:
    if isinstance(pred, list):
        return [_entity_type(str(label)) for label in pred]
    if isinstance(pred, (int, float)) and not isinstance(pred, bool):
        return [float(pred)]
    return [str(pred)]


def _entity_type(label: str) -> str:
    """``B-PER`` and ``I-PER`` -> ``PER``; other labels (``O``, multilabel names) as they are."""
    return label[2:] if label[:2] in ("B-", "I-") else label


def quantile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile with linear interpolation (numpy's default), without numpy."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def numeric_bins(reference: Sequence[float]) -> list[float]:
    """The cut points of a numeric feature: the reference's deciles, repeated ones merged."""
    return sorted({quantile(reference, q) for q in _CUTS}) if reference else []


def shares(counts: dict[Any, int], keys: Iterable[Any]) -> list[float]:
    """Each key's share of the counts, in ``keys`` order."""
    total = sum(counts.values())
    return [counts.get(key, 0) / total if total else 0.0 for key in keys]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The population-stability index of two distributions over the same bins (shares summing to 1)."""
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, EPSILON), max(a, EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def categorical_counts(values: Iterable[Any]) -> dict[Any, int]:
    """Occurrences of each value."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return counts


def binned_counts(values: Iterable[float], cuts: Sequence[float]) -> dict[int, int]:
    """Occurrences per bin: bin i holds values in (cuts[i-1], cuts[i]], the first and last open-ended."""
    counts: dict[int, int] = {}
    for value in values:
        index = sum(1 for cut in cuts if value > cut)
        counts[index] = counts.get(index, 0) + 1
    return counts


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's two distributions, its PSI and whether it passes the threshold."""

    name: str
    bins: list[str]
    expected: list[float]
    actual: list[float]
    psi: float
    flagged: bool
    reference_summary: str
    current_summary: str


def compare(name: str, reference: Sequence[Any], current: Sequence[Any], threshold: float) -> FeatureDrift | None:
    """The drift of one feature; None when either side has no values of it."""
    if not reference or not current:
        return None
    if all(isinstance(v, float) for v in reference) and all(isinstance(v, float) for v in current):
        cuts = numeric_bins(reference)
        keys: list[Any] = list(range(len(cuts) + 1))
        expected, actual = shares(binned_counts(reference, cuts), keys), shares(binned_counts(current, cuts), keys)
        edges = ["-inf"] + [f"{c:.4g}" for c in cuts] + ["inf"]
        bins = [f"({edges[i]}, {edges[i + 1]}]" for i in keys]
        summaries = (_quantiles(reference), _quantiles(current))
    else:
        reference_counts = categorical_counts(map(str, reference))
        current_counts = categorical_counts(map(str, current))
        keys = sorted(set(reference_counts) | set(current_counts))
        expected, actual = shares(reference_counts, keys), shares(current_counts, keys)
        bins = list(keys)
        summaries = (_top(bins, expected), _top(bins, actual))
    value = psi(expected, actual)
    return FeatureDrift(name, bins, expected, actual, value, value > threshold, *summaries)


def _quantiles(values: Sequence[float]) -> str:
    return " ".join(f"p{round(q * 100)}={quantile(values, q):.3g}" for q in QUANTILES)


def _top(bins: Sequence[str], values: Sequence[float], n: int = 3) -> str:
    ranked = sorted(zip(values, bins), key=lambda pair: (-pair[0], pair[1]))[:n]
    return " ".join(f"{label}={share:.0%}" for share, label in ranked)


@dataclass(frozen=True)
class DriftReport:
    """The comparison of a current sample with the reference (the checkpoint's test split)."""

    reference_records: int
    current_records: int
    features: list[FeatureDrift]
    threshold: float

    @property
    def drifted(self) -> list[str]:
        """The names of the flagged features."""
        return [f.name for f in self.features if f.flagged]

    def table(self) -> str:
        """A fixed-width table, one row per feature."""
        rows = [("feature", "PSI", "flag", "test split", "current")]
        rows += [(f.name, f"{f.psi:.3f}", "DRIFT" if f.flagged else "ok", f.reference_summary, f.current_summary)
                 for f in self.features]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths)) + "  " + row[4] for row in rows]
        head = f"{self.current_records} records against {self.reference_records} test records " \
               f"(PSI threshold {self.threshold:g})"
        return "\n".join([head, *lines])


def report(reference: Sample, current: Sample, threshold: float = DEFAULT_THRESHOLD) -> DriftReport:
    """Compare the three features of ``current`` with ``reference``."""
    if not (threshold > 0 and math.isfinite(threshold)):
        raise SettingError("threshold", threshold, "a PSI above 0, such as 0.2")
    pairs = (("label", reference.labels, current.labels), ("confidence", reference.confidences,
                                                           current.confidences),
             ("input_words", reference.words, current.words))
    features = [d for d in (compare(n, r, c, threshold) for n, r, c in pairs) if d is not None]
    return DriftReport(reference.records, current.records, features, threshold)


def reference_sample(lines: Iterable[str], where: str = "test_predictions.jsonl") -> Sample:
    """The test split's sample, from ``test_predictions.jsonl`` (a row: the record's fields, gold, pred, proba)."""
    sample = Sample()
    for number, line in enumerate(lines, 1):
        if line.strip():
            row = parse_json(line, f"{where} line {number}")
            sample.add(row, row)
    return sample


def parse_json(text: str, where: str) -> Any:
    """One JSON value, or SettingError naming where it was read."""
    try:
        return json.loads(text)
    except ValueError:
        raise SettingError("source", where, "JSON (a capture record, a record or an answer)") from None


def payload_items(data: str, content_type: str, where: str) -> list[Any]:
    """The records of a request body or the answers of a response body, by content type.

    JSON: ``{"data": [...]}``, ``{"predictions": [...]}``, a list, or one object; JSON Lines: one object a line.
    """
    if "jsonlines" in content_type or "jsonl" in content_type or "json-lines" in content_type:
        return [parse_json(line, where) for line in data.splitlines() if line.strip()]
    value = parse_json(data, where)
    if isinstance(value, dict):
        for key in ("data", "predictions", "instances"):
            if isinstance(value.get(key), list):
                return list(value[key])
        return [value]
    return list(value) if isinstance(value, list) else [value]


def _capture_text(part: dict[str, Any], where: str) -> tuple[str, str]:
    """The body text and content type of ``endpointInput`` or ``endpointOutput``."""
    if not isinstance(part, dict) or "data" not in part:
        raise SettingError("source", where, "a SageMaker capture record (captureData.endpointInput/Output.data)")
    data = str(part["data"])
    if str(part.get("encoding", "")).upper() == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise SettingError("source", where, "BASE64 data that decodes to UTF-8 text") from None
    return data, str(part.get("observedContentType", "application/json"))


def add_capture_lines(sample: Sample, lines: Iterable[str], where: str) -> None:
    """Add the records of capture file lines (one capture record a line) to ``sample``."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        at = f"{where} line {number}"
        parsed = parse_json(line, at)
        captured = parsed.get("captureData") if isinstance(parsed, dict) else None
        if not isinstance(captured, dict) or "endpointInput" not in captured:
            raise SettingError("source", at, "a SageMaker capture record with captureData.endpointInput")
        records = payload_items(*_capture_text(captured["endpointInput"], at), at)
        answers = payload_items(*_capture_text(captured["endpointOutput"], at), at) \
            if "endpointOutput" in captured else []
        add_pairs(sample, records, answers)


def add_pairs(sample: Sample, records: Sequence[Any], answers: Sequence[Any]) -> None:
    """Records and their answers, matched by position (an answer missing for a record counts no prediction)."""
    for index in range(max(len(records), len(answers))):
        sample.add(records[index] if index < len(records) else None,
                   answers[index] if index < len(answers) else None)
