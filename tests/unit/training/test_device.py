"""training.device: device facts in, precision and Trainer arguments out -- the whole decision without a GPU."""
from __future__ import annotations

import pytest

from runtimes.cpu import KINDS, read_cpu
from training import device
from training.config import ConfigError, TrainConfig
from training.device import CPU_BF16_KINDS, DeviceFacts, PrecisionError, choose, probe, resolve_precision

CPU = DeviceFacts(cuda=False, name="cpu", gpus_per_host=0)
#: one CPU of each kind (runtimes.cpu.KINDS), with the bf16 units that kind has
CPUS = {kind: DeviceFacts(cuda=False, name="cpu", gpus_per_host=0, cpu_kind=kind,
                          cpu_bf16=kind in ("amx", "avx512_bf16")) for kind in KINDS}
SAPPHIRE_RAPIDS, GENOA, ICE_LAKE = CPUS["amx"], CPUS["avx512_bf16"], CPUS["vnni"]
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
def test_half_precision_on_a_cpu_without_bf16_is_refused(requested):
    with pytest.raises(PrecisionError) as info:
        resolve_precision(requested, CPU)
    assert f"mixed_precision={requested!r} needs a CUDA GPU" in str(info.value)
    assert "this torch has no CUDA support" in str(info.value)
    assert "avx2" in str(info.value) and str(info.value).endswith("expected mixed_precision=auto or no")
    with pytest.raises(PrecisionError, match="no CUDA GPU is visible"):
        resolve_precision(requested, CPU_IN_GPU_IMAGE)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("requested", ["auto", "bf16", "no", "fp16"])
def test_precision_for_each_cpu_kind(kind, requested):
    """auto: bf16 autocast on the kinds with bf16 units, fp32 on the rest; bf16 only on bf16 units; no always;
    fp16 never (no CPU has a GPU's loss scaling and fp16 units)."""
    facts = CPUS[kind]
    bf16_units = kind in ("amx", "avx512_bf16")
    expected = {"auto": "bf16" if bf16_units else "no", "bf16": "bf16" if bf16_units else None, "no": "no",
                "fp16": None}[requested]
    if expected is None:
        with pytest.raises(PrecisionError) as info:
            resolve_precision(requested, facts)
        message = str(info.value)
        assert f"mixed_precision={requested!r}" in message and kind in message
        allowed = "auto, bf16 or no" if bf16_units else "auto or no"
        assert message.endswith(f"expected mixed_precision={allowed}"), message
    else:
        assert resolve_precision(requested, facts) == expected


def test_bf16_on_a_cpu_without_bf16_units_names_the_kind_and_what_would_do():
    with pytest.raises(PrecisionError) as info:
        resolve_precision("bf16", ICE_LAKE)
    message = str(info.value)
    assert "a CPU with bf16 in hardware (AMX or AVX-512 bf16" in message
    assert "training runs on the CPU (vnni: no bf16 units)" in message and "this torch has no CUDA support" in message


def test_the_cpu_kinds_auto_trains_in_bf16_are_one_table(monkeypatch):
    """Taking a kind out of CPU_BF16_KINDS (a bench figure says bf16 is slower there) leaves auto in fp32 on it;
    an explicit bf16 still runs on its bf16 units."""
    assert set(CPU_BF16_KINDS) <= set(KINDS)
    monkeypatch.setattr(device, "CPU_BF16_KINDS", ("amx",))
    assert resolve_precision("auto", GENOA) == "no"
    assert resolve_precision("bf16", GENOA) == "bf16"
    assert resolve_precision("auto", SAPPHIRE_RAPIDS) == "bf16"
    line = choose(TrainConfig(task_name="classif"), GENOA).describe()
    assert "avx512_bf16 CPU, bf16 in hardware, but not a kind auto trains in bf16 on" in line
    assert "precision no" in line


def test_the_facts_default_to_a_cpu_that_trains_in_fp32():
    assert (CPU.cpu_kind, CPU.cpu_bf16, CPU.native_bf16) == ("avx2", False, False)
    assert GENOA.native_bf16 and not T4.native_bf16


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
    # bf16 autocast on the CPU: the Trainer's bf16 with use_cpu (accelerate then wraps forward in
    # torch.autocast("cpu", torch.bfloat16))
    assert choose(config, SAPPHIRE_RAPIDS).trainer_arguments(persist=True) == {
        "use_cpu": True, "bf16": True, "fp16": False, "save_on_each_node": False}
    fp32 = choose(TrainConfig(task_name="classif", mixed_precision="no"), SAPPHIRE_RAPIDS)
    assert fp32.trainer_arguments(persist=True) == {
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
    assert ("training on the CPU (avx2 CPU, no bf16 in hardware (AMX or AVX-512 bf16): auto trains in fp32): no "
            "CUDA GPU is visible (torch is a CUDA 13.0 build)") in cpu_line
    assert "precision no" in cpu_line


@pytest.mark.parametrize("facts, says", [
    (SAPPHIRE_RAPIDS, "training on the CPU (amx CPU, bf16 in hardware: auto trains in bf16 autocast); "),
    (GENOA, "training on the CPU (avx512_bf16 CPU, bf16 in hardware: auto trains in bf16 autocast); "),
    (ICE_LAKE, "training on the CPU (vnni CPU, no bf16 in hardware (AMX or AVX-512 bf16): auto trains in fp32); "),
])
def test_the_cpu_log_line_names_the_kind_and_why(facts, says):
    line = choose(TrainConfig(task_name="classif"), facts).describe()
    assert line.startswith(says), line
    assert f"precision {'bf16' if facts.cpu_bf16 else 'no'};" in line


def test_mixed_precision_no_forces_fp32_on_a_bf16_cpu():
    chosen = choose(TrainConfig(task_name="classif", mixed_precision="no"), SAPPHIRE_RAPIDS)
    assert chosen.precision == "no" and "precision no;" in chosen.describe()


def test_recorded_facts_are_plain_json():
    import json

    recorded = choose(TrainConfig(task_name="ner"), T4).to_dict()
    assert json.loads(json.dumps(recorded)) == recorded
    assert (recorded["device"], recorded["precision"], recorded["capability"]) == ("cuda", "fp16", [7, 5])
    on_cpu = choose(TrainConfig(task_name="ner"), GENOA).to_dict()
    assert json.loads(json.dumps(on_cpu)) == on_cpu
    assert (on_cpu["device"], on_cpu["precision"], on_cpu["cpu_kind"], on_cpu["cpu_bf16"]) == (
        "cpu", "bf16", "avx512_bf16", True)


def test_probe_on_this_machine_and_under_torchrun_variables():
    import torch

    if torch.cuda.is_available():
        pytest.skip("the CPU probe is what this test checks")
    facts = probe({})
    assert (facts.cuda, facts.name, facts.gpus_per_host, facts.world_size, facts.hosts) == (False, "cpu", 0, 1, 1)
    assert facts.cuda_build == torch.version.cuda
    # the CPU's facts come from runtimes.cpu, the one reader of /proc/cpuinfo
    assert (facts.cpu_kind, facts.cpu_bf16) == (read_cpu().kind, read_cpu().native_bf16)
    two_hosts = probe({"WORLD_SIZE": "4", "LOCAL_WORLD_SIZE": "2", "LOCAL_RANK": "1"})
    assert (two_hosts.world_size, two_hosts.hosts) == (4, 2)


def test_the_trainer_gets_the_decision_and_gradient_checkpointing():
    from tasks.kinds import task_kind
    from training.trainer import training_arguments

    config = TrainConfig(task_name="classif", gradient_checkpointing=True, max_steps=4)
    args = training_arguments(config, task_kind("classif"), "unused", choose(config, CPU), persist=False)
    assert (args.use_cpu, args.fp16, args.bf16, args.save_on_each_node) == (True, False, False, False)
    bf16 = training_arguments(config, task_kind("classif"), "unused", choose(config, GENOA), persist=False)
    # what accelerate reads to wrap the model's forward in torch.autocast("cpu", dtype=torch.bfloat16)
    assert (bf16.use_cpu, bf16.bf16, bf16.fp16, bf16.mixed_precision) == (True, True, False, "bf16")
    assert args.activation_checkpointing is True
    assert args.activation_checkpointing_kwargs == {"use_reentrant": False}
    plain = training_arguments(TrainConfig(task_name="classif", max_steps=4), task_kind("classif"), "unused",
                               choose(config, CPU), persist=False)
    assert not plain.activation_checkpointing
