"""tasks.spec (the versioned task_spec.json), tasks.families (model quirks) and tasks.kinds (the task table)."""
from __future__ import annotations

import json

import pytest

from tasks import decode, metrics
from tasks.errors import SpecError
from tasks.families import FAMILIES, family_for
from tasks.kinds import TASKS, task_kind
from tasks.spec import SCHEMA_VERSION, TASK_NAMES, TASK_SPEC_FILE, TaskSpec


def _spec_error(**kwargs) -> str:
    with pytest.raises(SpecError) as info:
        TaskSpec(**kwargs)
    return str(info.value)


def _from_dict_error(data) -> str:
    with pytest.raises(SpecError) as info:
        TaskSpec.from_dict(data)
    return str(info.value)


def _valid(**overrides) -> dict:
    data = {"task": "classif", "model_type": "bert", "labels": ["neg", "pos"], "schema_version": SCHEMA_VERSION}
    data.update(overrides)
    return data


# ---- TaskSpec -----------------------------------------------------------------------------------------------

def test_defaults_and_derived_values():
    spec = TaskSpec(task="multilabel-classif", model_type="bert", labels=("a", "b"), thresholds={"b": 0.3})
    assert (spec.max_seq_length, spec.stride, spec.use_bbox, spec.schema_version) == (256, 32, False, 1)
    assert spec.num_outputs == 2
    assert (spec.threshold("a"), spec.threshold("b")) == (0.5, 0.3)
    assert TASK_SPEC_FILE == "task_spec.json"


def test_regression_has_one_output_and_no_labels():
    assert TaskSpec(task="regression", model_type="distilbert").num_outputs == 1


def test_to_dict_is_json_and_round_trips():
    spec = TaskSpec(task="ner", model_type="layoutlm", labels=("O", "B-PER", "I-PER"), max_seq_length=64,
                    stride=8, use_bbox=True)
    data = json.loads(json.dumps(spec.to_dict()))
    assert data == {"task": "ner", "model_type": "layoutlm", "labels": ["O", "B-PER", "I-PER"],
                    "max_seq_length": 64, "stride": 8, "use_bbox": True, "thresholds": {}, "schema_version": 1}
    assert TaskSpec.from_dict(data) == spec


def test_from_dict_converts_threshold_values_to_float():
    spec = TaskSpec.from_dict(_valid(task="multilabel-classif", thresholds={"pos": 1, "neg": "0.25"}))
    assert spec.thresholds == {"pos": 1.0, "neg": 0.25}
    assert isinstance(spec.thresholds["pos"], float)
    assert spec.labels == ("neg", "pos")


@pytest.mark.parametrize("kwargs, message", [
    ({"task": "tagging", "model_type": "bert", "labels": ("a",)},
     "task 'tagging' is not one of ['ner', 'classif', 'multilabel-classif', 'regression', 'pair-classif']"),
    ({"task": "classif", "model_type": "gpt2", "labels": ("a",)},
     "model_type 'gpt2' is not supported; expected one of ['bert', 'distilbert', 'layoutlm', 'longformer', 'roberta']"),
    ({"task": "classif", "model_type": "bert", "labels": ("a",), "use_bbox": True},
     "use_bbox is true but model_type 'bert' takes no boxes (use LayoutLM)"),
    ({"task": "classif", "model_type": "bert"}, "task 'classif' needs at least one label"),
    ({"task": "ner", "model_type": "bert", "labels": ()}, "task 'ner' needs at least one label"),
    ({"task": "regression", "model_type": "bert", "labels": ("score",)}, "task 'regression' takes no labels"),
    ({"task": "classif", "model_type": "bert", "labels": ("a", "b", "a")}, "labels must be unique"),
    ({"task": "classif", "model_type": "bert", "labels": ("a",), "max_seq_length": 7, "stride": 0},
     "max_seq_length must be at least 8, got 7"),
    ({"task": "ner", "model_type": "bert", "labels": ("O",), "max_seq_length": 16, "stride": 8},
     "stride must be between 0 and 7 for max_seq_length 16, got 8"),
    ({"task": "ner", "model_type": "bert", "labels": ("O",), "max_seq_length": 16, "stride": -1},
     "stride must be between 0 and 7 for max_seq_length 16, got -1"),
    ({"task": "multilabel-classif", "model_type": "bert", "labels": ("a",), "thresholds": {"b": 0.5, "c": 0.1}},
     "thresholds name labels the model does not have: ['b', 'c']"),
    ({"task": "multilabel-classif", "model_type": "bert", "labels": ("a",), "thresholds": {"a": 1.5}},
     "thresholds must lie in [0, 1]"),
    ({"task": "multilabel-classif", "model_type": "bert", "labels": ("a",), "thresholds": {"a": -0.1}},
     "thresholds must lie in [0, 1]"),
])
def test_validation_errors(kwargs, message):
    assert _spec_error(**kwargs) == message


def test_boundary_values_are_valid():
    spec = TaskSpec(task="ner", model_type="layoutlm", labels=("O",), max_seq_length=8, stride=3, use_bbox=True)
    assert (spec.max_seq_length, spec.stride) == (8, 3)
    assert TaskSpec(task="multilabel-classif", model_type="bert", labels=("a", "b"),
                    thresholds={"a": 0.0, "b": 1.0}).thresholds == {"a": 0.0, "b": 1.0}


def test_spec_is_frozen():
    spec = TaskSpec(task="classif", model_type="bert", labels=("a",))
    with pytest.raises(AttributeError):
        spec.task = "ner"  # type: ignore[misc]


# ---- TaskSpec.from_dict errors -------------------------------------------------------------------------------

@pytest.mark.parametrize("data, message", [
    ([1, 2], "a task spec must be a JSON object"),
    ({"task": "classif", "model_type": "bert", "labels": ["a"]},
     "task spec schema_version None is not supported (this code reads 1)"),
    (_valid(schema_version=2), "task spec schema_version 2 is not supported (this code reads 1)"),
    (_valid(schema_version="1"), "task spec schema_version '1' is not supported (this code reads 1)"),
    (_valid(tokenizer="x", labelz=["a"]), "task spec has unknown fields ['labelz', 'tokenizer']"),
    ({"schema_version": 1, "labels": ["a"]}, "task spec is missing ['model_type', 'task']"),
    ({"schema_version": 1, "task": "classif", "labels": ["a"]}, "task spec is missing ['model_type']"),
    (_valid(model_type="t5"),
     "model_type 't5' is not supported; expected one of ['bert', 'distilbert', 'layoutlm', 'longformer', 'roberta']"),
    (_valid(labels=[]), "task 'classif' needs at least one label"),
])
def test_from_dict_errors(data, message):
    assert _from_dict_error(data) == message


def test_from_dict_wrong_value_type_is_a_spec_error():
    message = _from_dict_error(_valid(max_seq_length="256"))
    assert message.startswith("task spec is not valid: ")
    assert "'<' not supported" in message


def test_from_dict_non_numeric_threshold_is_a_spec_error():
    with pytest.raises(SpecError):
        TaskSpec.from_dict(_valid(task="multilabel-classif", thresholds={"pos": "high"}))


def test_from_dict_labels_given_as_a_string_are_refused():
    with pytest.raises(SpecError):
        TaskSpec.from_dict(_valid(labels="PER"))


# ---- families -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("model_type, names", [
    ("bert", ("input_ids", "attention_mask", "token_type_ids")),
    ("distilbert", ("input_ids", "attention_mask")),
    ("roberta", ("input_ids", "attention_mask")),
    ("longformer", ("input_ids", "attention_mask", "global_attention_mask")),
    ("layoutlm", ("input_ids", "attention_mask", "token_type_ids", "bbox")),
])
def test_family_input_names(model_type, names):
    assert family_for(model_type).input_names() == names


def test_prefix_space_families_are_the_byte_level_bpe_ones():
    assert sorted(m for m, f in FAMILIES.items() if f.add_prefix_space) == ["longformer", "roberta"]
    assert [m for m, f in FAMILIES.items() if f.bbox] == ["layoutlm"]


def test_unknown_family_names_the_supported_ones():
    with pytest.raises(SpecError, match=r"^model_type 'xlnet' is not supported; expected one of \['bert', "):
        family_for("xlnet")


# ---- the task table ------------------------------------------------------------------------------------------

def test_task_table_rows():
    assert tuple(TASKS) == TASK_NAMES
    rows = {name: (k.head, k.problem_type, k.decode, k.score, k.primary_metric, k.greater_is_better)
            for name, k in TASKS.items()}
    assert rows == {
        "ner": ("token", None, decode.decode_ner, metrics.score_ner, "f1", True),
        "classif": ("sequence", "single_label_classification", decode.decode_classif, metrics.score_classif,
                    "f1_macro", True),
        "multilabel-classif": ("sequence", "multi_label_classification", decode.decode_multilabel,
                               metrics.score_multilabel, "f1_micro", True),
        "regression": ("sequence", "regression", decode.decode_regression, metrics.score_regression, "mse", False),
        "pair-classif": ("sequence", "single_label_classification", decode.decode_classif, metrics.score_classif,
                         "f1_macro", True),
    }


def test_unknown_task_kind():
    assert task_kind("ner").name == "ner"
    with pytest.raises(SpecError) as info:
        task_kind("summarise")
    assert str(info.value) == ("task 'summarise' is not one of ['ner', 'classif', 'multilabel-classif', 'regression', "
                               "'pair-classif']")
