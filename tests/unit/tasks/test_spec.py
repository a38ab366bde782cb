"""tasks.spec (the versioned task_spec.json), tasks.families (model quirks) and tasks.kinds (the task table)."""
from __future__ import annotations

import json
import re

import pytest

from tasks.decode import decode_classif
from tasks.errors import SpecError
from tasks.families import DEFAULT, FAMILIES, family_for, family_of_name, longest_input, model_inputs
from tasks.kinds import TASK_NAMES, TASKS, check_spec, multilabel, ner, regression, task_kind
from tasks.metrics import score_classif
from tasks.spec import SCHEMA_VERSION, TASK_SPEC_FILE, TaskSpec


def _spec_error(**kwargs) -> str:
    with pytest.raises(SpecError) as info:
        check_spec(TaskSpec(**kwargs))  # what holds whatever the task, then what the task's row asks
    return str(info.value)


def _from_dict_error(data) -> str:
    with pytest.raises(SpecError) as info:
        check_spec(TaskSpec.from_dict(data))
    return str(info.value)


def _valid(**overrides) -> dict:
    data = {"task": "classif", "model_type": "bert", "labels": ["neg", "pos"], "schema_version": SCHEMA_VERSION}
    data.update(overrides)
    return data


# ---- TaskSpec -----------------------------------------------------------------------------------------------

def test_defaults_and_derived_values():
    spec = TaskSpec(task="multilabel-classif", model_type="bert", labels=("a", "b"), thresholds={"b": 0.3})
    assert (spec.max_seq_length, spec.stride, spec.use_bbox, spec.schema_version) == (256, 32, False, 2)
    assert task_kind(spec.task).num_outputs(spec.labels) == 2
    assert (spec.threshold("a"), spec.threshold("b")) == (0.5, 0.3)
    assert TASK_SPEC_FILE == "task_spec.json"


def test_regression_has_one_output_and_no_labels():
    assert task_kind("regression").num_outputs(TaskSpec(task="regression", model_type="distilbert").labels) == 1


def test_to_dict_is_json_and_round_trips():
    spec = TaskSpec(task="ner", model_type="layoutlm", labels=("O", "B-PER", "I-PER"), max_seq_length=64,
                    stride=8, use_bbox=True)
    data = json.loads(json.dumps(spec.to_dict()))
    assert data == {"task": "ner", "model_type": "layoutlm", "labels": ["O", "B-PER", "I-PER"],
                    "max_seq_length": 64, "stride": 8, "use_bbox": True, "thresholds": {},
                    "model_inputs": ["input_ids", "attention_mask", "token_type_ids", "bbox"],
                    "add_prefix_space": False, "word_start_ids": [], "schema_version": 2}
    assert TaskSpec.from_dict(data) == spec


def test_from_dict_converts_threshold_values_to_float():
    spec = TaskSpec.from_dict(_valid(task="multilabel-classif", thresholds={"pos": 1, "neg": "0.25"}))
    assert spec.thresholds == {"pos": 1.0, "neg": 0.25}
    assert isinstance(spec.thresholds["pos"], float)
    assert spec.labels == ("neg", "pos")


@pytest.mark.parametrize("kwargs, message", [
    ({"task": "tagging", "model_type": "bert", "labels": ("a",)},
     "task 'tagging' is not one of ['ner', 'classif', 'multilabel-classif', 'regression', 'pair-classif']"),
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
     "task spec schema_version None is not supported (this code reads 1 and 2)"),
    (_valid(schema_version=3), "task spec schema_version 3 is not supported (this code reads 1 and 2)"),
    (_valid(schema_version="1"), "task spec schema_version '1' is not supported (this code reads 1 and 2)"),
    (_valid(schema_version=True), "task spec schema_version True is not supported (this code reads 1 and 2)"),
    (_valid(tokenizer="x", labelz=["a"]), "task spec has unknown fields ['labelz', 'tokenizer']"),
    ({"schema_version": 1, "labels": ["a"]}, "task spec is missing ['model_type', 'task']"),
    ({"schema_version": 1, "task": "classif", "labels": ["a"]}, "task spec is missing ['model_type']"),
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
def test_a_spec_naming_no_inputs_gets_version_1s_for_its_family(model_type, names):
    spec = TaskSpec(task="classif", model_type=model_type, labels=("a",))
    assert spec.inputs == names
    assert spec.prefix_space is (model_type in ("roberta", "longformer"))


@pytest.mark.parametrize("model_type, config, forward, names", [
    # segments only where the config has more than one type and the forward takes them
    ("electra", {"type_vocab_size": 2}, None, ("input_ids", "attention_mask", "token_type_ids")),
    ("xlm-roberta", {"type_vocab_size": 1}, None, ("input_ids", "attention_mask")),
    ("deberta-v2", {"type_vocab_size": 0}, None, ("input_ids", "attention_mask")),
    ("modernbert", {}, None, ("input_ids", "attention_mask")),
    ("funnelish", {"type_vocab_size": 2}, ("input_ids", "attention_mask"), ("input_ids", "attention_mask")),
    # the table's extra inputs come on top
    ("layoutlm", {"type_vocab_size": 2}, None, ("input_ids", "attention_mask", "token_type_ids", "bbox")),
    ("longformer", {"type_vocab_size": 1}, None, ("input_ids", "attention_mask", "global_attention_mask")),
])
def test_model_inputs_are_derived_from_the_config_and_forward(model_type, config, forward, names):
    assert model_inputs(model_type, config, forward) == names


def test_longest_input_is_the_positions_less_the_reserved_ids():
    assert longest_input({"max_position_embeddings": 514}, position_offset=2) == 512
    assert longest_input({"max_position_embeddings": 8192}) == 8192
    assert longest_input({}) is None


def test_a_family_without_a_row_gets_the_defaults():
    assert family_for("xlnet") == DEFAULT
    assert (DEFAULT.onnx_fusion, DEFAULT.extra_inputs(), DEFAULT.gpu_batch_size) == (None, (), None)
    assert [m for m, f in FAMILIES.items() if f.bbox] == ["layoutlm"]


@pytest.mark.parametrize("name, family", [
    ("allenai/longformer-base-4096", "longformer"), ("distilbert-base-uncased", "distilbert"),
    ("xlm-roberta-large", "xlm-roberta"), ("camembert-base", "camembert"), ("albert-base-v2", "albert"),
    ("answerdotai/ModernBERT-base", "modernbert"), ("microsoft/deberta-v3-base", "deberta-v2"),
    ("google/electra-small-discriminator", "electra"), ("sentence-transformers/all-mpnet-base-v2", "mpnet"),
    ("roberta-base", "roberta"), ("bert-base-cased", "bert"), ("gpt2", None),
])
def test_the_launcher_guesses_a_family_from_the_name_by_the_longest_hint(name, family):
    assert family_of_name(name) == family


@pytest.mark.parametrize("inputs, message", [
    (("input_ids",), "model_inputs ['input_ids'] are not valid"),
    (("input_ids", "attention_mask", "pixel_values"),
     "then any of ['token_type_ids', 'bbox', 'global_attention_mask']"),
])
def test_a_spec_refuses_inputs_the_task_layer_cannot_build(inputs, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        TaskSpec(task="classif", model_type="bert", labels=("a",), model_inputs=inputs)


def test_a_version_1_file_reads_with_its_familys_facts_and_a_version_2_round_trips():
    v1 = TaskSpec.from_dict({"task": "ner", "model_type": "roberta", "labels": ["O"], "schema_version": 1})
    assert (v1.inputs, v1.prefix_space, v1.word_start_ids, v1.schema_version) == (
        ("input_ids", "attention_mask"), True, (), SCHEMA_VERSION)
    v2 = TaskSpec(task="ner", model_type="xlm-roberta", labels=("O",), model_inputs=("input_ids", "attention_mask"),
                  add_prefix_space=False, word_start_ids=(5,))
    assert TaskSpec.from_dict(json.loads(json.dumps(v2.to_dict()))) == v2
    new_fields = "unknown fields ['add_prefix_space', 'model_inputs', 'word_start_ids']"
    with pytest.raises(SpecError, match=re.escape(new_fields)):
        TaskSpec.from_dict({**v1.to_dict(), "schema_version": 1})


# ---- the task table ------------------------------------------------------------------------------------------

def test_task_table_rows():
    assert tuple(TASKS) == TASK_NAMES
    rows = {name: (k.head, k.problem_type, k.decode, k.score, k.primary_metric, k.greater_is_better)
            for name, k in TASKS.items()}
    assert rows == {
        "ner": ("token", None, ner.decode, ner.score, "f1", True),
        "classif": ("sequence", "single_label_classification", decode_classif, score_classif,
                    "f1_macro", True),
        "multilabel-classif": ("sequence", "multi_label_classification", multilabel.decode,
                               multilabel.score, "f1_micro", True),
        "regression": ("sequence", "regression", regression.decode, regression.score, "mse", False),
        "pair-classif": ("sequence", "single_label_classification", decode_classif, score_classif,
                         "f1_macro", True),
    }


def test_unknown_task_kind():
    assert task_kind("ner").name == "ner"
    with pytest.raises(SpecError) as info:
        task_kind("summarise")
    assert str(info.value) == ("task 'summarise' is not one of ['ner', 'classif', 'multilabel-classif', 'regression', "
                               "'pair-classif']")
