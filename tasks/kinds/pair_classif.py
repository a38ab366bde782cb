"""``pair-classif``: one label per pair of texts (``text`` and ``text_pair``: entailment, paraphrase, answer
relevance), decoded and scored like ``classif``.

The two texts are tokenised together, the way the model was pre-trained on pairs: ``[CLS] text [SEP] text_pair
[SEP]`` (``<s> text </s></s> text_pair </s>`` for RoBERTa-style tokenizers), with segment ids 0 and 1 for models
that take ``token_type_ids``. A pair longer than ``max_seq_length`` is cut by ``longest_first``: a token at a time
from whichever text is longer at that moment, so a long first text never crowds out the second (``only_second``
would fail outright on a first text that alone exceeds the limit). Boxes are not read: LayoutLM has no pair form.
"""
from __future__ import annotations

from typing import Any

from tasks.decode import decode_classif
from tasks.features import Feature, Target, target_of
from tasks.fields import Record, check_text
from tasks.kinds import classif
from tasks.kinds.base import TaskKind
from tasks.metrics import score_classif
from tasks.spec import TaskSpec


def pair_features(spec: TaskSpec, tokenizer: Any, records: list[Record], target: Target | None) -> list[Feature]:
    """One feature per record: the two texts as one pair, truncated ``longest_first`` to ``max_seq_length``."""
    pairs = [check_text(r.text_pair, "text_pair") for r in records]
    enc = tokenizer([r.text for r in records], pairs, truncation="longest_first", max_length=spec.max_seq_length,
                    return_token_type_ids=True)
    return [Feature(record=i, input_ids=list(ids), token_type_ids=list(enc["token_type_ids"][i]),
                    labels=target_of(records[i], target))
            for i, ids in enumerate(enc["input_ids"])]


KIND = TaskKind(
    name="pair-classif", head="sequence", problem_type="single_label_classification", inputs=("text", "text_pair"),
    parse_label=classif.parse_label, label_names=classif.label_names, target=classif.target,
    encode=pair_features, decode=decode_classif, score=score_classif,
    metric_names=("accuracy", "f1_macro", "f1_weighted"), primary_metric="f1_macro", greater_is_better=True,
    min_labels=2, takes_bbox=False, example_answer='{"pred": "entailment", "proba": 0.93}',
)
