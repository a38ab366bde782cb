"""The new head learns at head_learning_rate_ratio times the learning rate; the pretrained weights at the rate."""
from __future__ import annotations

import pytest

from training.config import ConfigError, TrainConfig
from training.trainer import head_groups


class _P:
    """A stand-in parameter: only its identity matters to head_groups."""


def test_head_parameters_move_to_their_own_groups_keeping_weight_decay():
    w, b, head_w, head_b = _P(), _P(), _P(), _P()
    groups = [{"params": [w, head_w], "lr": 2e-5, "weight_decay": 0.01, "betas": (0.9, 0.999)},
              {"params": [b, head_b], "lr": 2e-5, "weight_decay": 0.0, "betas": (0.9, 0.999)}]
    out = head_groups(groups, {id(head_w), id(head_b)}, 10.0)
    assert [(g["params"], g["lr"], g["weight_decay"]) for g in out] == [
        ([w], 2e-5, 0.01), ([b], 2e-5, 0.0),
        ([head_w], pytest.approx(2e-4), 0.01), ([head_b], pytest.approx(2e-4), 0.0)]
    assert all(g["betas"] == (0.9, 0.999) for g in out)


def test_a_group_left_empty_is_dropped():
    head = _P()
    out = head_groups([{"params": [head], "lr": 1e-3, "weight_decay": 0.0}], {id(head)}, 3.0)
    assert [(g["params"], g["lr"]) for g in out] == [([head], pytest.approx(3e-3))]


@pytest.mark.parametrize("value", ["0", "-1"])
def test_a_ratio_that_leaves_the_head_untrained_is_refused(value):
    with pytest.raises(ConfigError, match="head_learning_rate_ratio"):
        TrainConfig.from_hyperparameters({"task_name": "ner", "head_learning_rate_ratio": value})


@pytest.mark.slow
@pytest.mark.parametrize("arch,task,folder,ratio", [
    ("bert", "ner", "ner", "10"), ("distilbert", "classif", "classif", "4"), ("bert", "classif", "classif", "1")])
def test_the_trainer_runs_the_new_head_at_the_ratio(arch, task, folder, ratio, tiny_model_dir, small_data, tmp_path):
    from transformers import TrainerCallback

    from training.data import load_dataset
    from training.device import choose, probe
    from training.run import load_base
    from training.trainer import fit

    config = TrainConfig.from_hyperparameters({
        "task_name": task, "model_name": str(tiny_model_dir(arch)), "max_steps": "2",
        "per_device_train_batch_size": "4", "max_seq_length": "32", "stride": "8", "learning_rate": "1e-4",
        "head_learning_rate_ratio": ratio})
    data = load_dataset(small_data(folder), task)
    spec, tokenizer, model, head_names = load_base(config, data)
    # the head is what the base checkpoint lacks: DistilBERT's sequence head has a pre_classifier layer too
    expected = {"classifier.weight", "classifier.bias"} | (
        {"pre_classifier.weight", "pre_classifier.bias"} if (arch, task) == ("distilbert", "classif") else set())
    assert head_names == expected
    seen: dict[str, float] = {}

    class Rates(TrainerCallback):
        def on_train_begin(self, args, state, control, optimizer=None, model=None, **kwargs):
            ids = {id(p): n for n, p in model.named_parameters()}
            for group in optimizer.param_groups:
                for p in group["params"]:
                    seen[ids[id(p)]] = group["initial_lr"]

    fit(config, spec, tokenizer, model, data, str(tmp_path), choose(config, probe()), [Rates()], persist=False,
        head_names=head_names)
    assert set(seen) == {n for n, p in model.named_parameters() if p.requires_grad}
    for name, rate in seen.items():
        assert rate == pytest.approx(1e-4 * (float(ratio) if name in expected else 1.0)), name
