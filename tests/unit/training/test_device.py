"""training.device: device facts in, precision and Trainer arguments out -- the whole decision without a GPU."""
from __future__ import annotations

import pytest

from training.config import ConfigError, TrainConfig
from training.device import DeviceFacts, PrecisionError, choose, probe, resolve_precision

CPU = DeviceFacts(cuda=False, name="cpu", gpus_per_host=0)
CPU_IN_GPU_IMAGE = DeviceFacts(cuda=False, name="cpu", gpus_per_host=0, cuda_build="13.0")
T4 = DeviceFacts(cuda=True, name="Tesla T4", gpus_per_host=1, capability=(7, 5), cuda_build="13.0")
A10G = DeviceFacts(cuda=True, name="NVIDIA A10G", gpus_per_host=4, capability=(8, 6), world_size=4)
H100_TWO_HOSTS = DeviceFacts(cuda=True, name="NVIDIA H100", gpus_per_host=8, capability=(9, 0), world_size=16,
                             hosts=2)


@pytest.mark.parametrize("facts, requested, expected", [
    (CPU, "auto", "no"), (CPU, "no", "no"), (CPU_IN_GPU_IMAGE, "auto", "no"),
    (T4, "auto", "fp16"), (T4, "fp16", "fp16"), (T4, "no", "no"),
    (A10G, "auto", "bf16"), (A10G, "bf16", "bf16"), (A10G, "fp16", "fp16"), (A10G, "no", "no"),
    (H100_TWO_HOSTS, "auto", "bf16"),
])
def test_precision_for_the_device(facts, requested, expected):
    assert resolve_precision(requested, facts) == expected


def test_bf16_on_a_t4_is_refused_naming_the_gpu():
    with pytest.raises(PrecisionError) as info:
        resolve_precision("bf16", T4)
    message = str(info.value)
    assert "mixed_precision='bf16'" in message and "Tesla T4" in message and "7.5" in message
    assert "expected mixed_precision=auto, fp16 or no" in message


@pytest.mark.parametrize("requested", ["fp16", "bf16"])
def test_half_precision_on_the_cpu_is_refused(requested):
    with pytest.raises(PrecisionError) as info:
        resolve_precision(requested, CPU)
    assert f"mixed_precision={requested!r} needs a CUDA GPU" in str(info.value)
    assert "this torch has no CUDA support" in str(info.value)
    with pytest.raises(PrecisionError, match="no CUDA GPU is visible"):
        resolve_precision(requested, CPU_IN_GPU_IMAGE)


def test_a_precision_error_is_a_config_error():
    """So that the entrypoints report it as a user's mistake (failure file, exit 2 on the command line)."""
    assert issubclass(PrecisionError, ConfigError)
    with pytest.raises(PrecisionError) as info:
        resolve_precision("bf16", T4)
    assert info.value.field == "mixed_precision"


def test_mixed_precision_is_a_validated_hyperparameter():
    assert TrainConfig.from_hyperparameters({"task_name": "ner"}).mixed_precision == "auto"
    assert TrainConfig.from_hyperparameters({"task_name": "ner", "mixed_precision": '"fp16"'}).mixed_precision == "fp16"
    with pytest.raises(ConfigError, match=r"mixed_precision='fp32' is not valid; expected one of \['auto', 'fp16'"):
        TrainConfig.from_hyperparameters({"task_name": "ner", "mixed_precision": "fp32"})
    cfg = TrainConfig.from_hyperparameters({"task_name": "ner", "gradient_checkpointing": "true"})
    assert cfg.gradient_checkpointing is True
    assert TrainConfig(task_name="ner").gradient_checkpointing is False


def test_effective_batch_size_counts_devices_and_accumulation():
    config = TrainConfig(task_name="classif", per_device_train_batch_size=10, gradient_accumulation_steps=3)
    assert choose(config, CPU).effective_batch_size == 30
    assert choose(config, A10G).effective_batch_size == 10 * 4 * 3
    assert choose(config, H100_TWO_HOSTS).effective_batch_size == 10 * 16 * 3


def test_trainer_arguments():
    config = TrainConfig(task_name="classif")
    assert choose(config, CPU).trainer_arguments(persist=True) == {
        "use_cpu": True, "bf16": False, "fp16": False, "save_on_each_node": False}
    assert choose(config, T4).trainer_arguments(persist=False) == {
        "use_cpu": False, "bf16": False, "fp16": True, "save_on_each_node": False}
    # hosts share no disk: each keeps its own checkpoints, but only when checkpoints are written at all
    two_hosts = choose(config, H100_TWO_HOSTS)
    assert two_hosts.trainer_arguments(persist=True)["save_on_each_node"] is True
    assert two_hosts.trainer_arguments(persist=False)["save_on_each_node"] is False
    assert two_hosts.trainer_arguments(persist=True)["bf16"] is True


def test_the_log_line_says_where_how_and_how_much():
    config = TrainConfig(task_name="classif", per_device_train_batch_size=10, gradient_accumulation_steps=2)
    line = choose(config, A10G).describe()
    assert "4 x NVIDIA A10G (compute capability 8.6)" in line and "4 process(es) on 1 host(s)" in line
    assert "precision bf16" in line and "effective batch size 80 = 10 per device x 4 process(es) x 2" in line
    cpu_line = choose(config, CPU_IN_GPU_IMAGE).describe()
    assert "training on the CPU: no CUDA GPU is visible (torch is a CUDA 13.0 build)" in cpu_line
    assert "precision no" in cpu_line


def test_recorded_facts_are_plain_json():
    import json

    recorded = choose(TrainConfig(task_name="ner"), T4).to_dict()
    assert json.loads(json.dumps(recorded)) == recorded
    assert (recorded["device"], recorded["precision"], recorded["capability"]) == ("cuda", "fp16", [7, 5])


def test_probe_on_this_machine_and_under_torchrun_variables():
    import torch

    if torch.cuda.is_available():
        pytest.skip("the CPU probe is what this test checks")
    facts = probe({})
    assert (facts.cuda, facts.name, facts.gpus_per_host, facts.world_size, facts.hosts) == (False, "cpu", 0, 1, 1)
    assert facts.cuda_build == torch.version.cuda
    two_hosts = probe({"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (two_hosts.world_size, two_hosts.hosts) == (4, 2)


def test_the_trainer_gets_the_decision_and_gradient_checkpointing():
    from tasks.kinds import task_kind
    from training.trainer import training_arguments

    config = TrainConfig(task_name="classif", gradient_checkpointing=True, max_steps=4)
    args = training_arguments(config, task_kind("classif"), "unused", choose(config, CPU), persist=False)
    assert (args.use_cpu, args.fp16, args.bf16, args.save_on_each_node) == (True, False, False, False)
    assert args.activation_checkpointing is True
    assert args.activation_checkpointing_kwargs == {"use_reentrant": False}
    plain = training_arguments(TrainConfig(task_name="classif", max_steps=4), task_kind("classif"), "unused",
                               choose(config, CPU), persist=False)
    assert not plain.activation_checkpointing
