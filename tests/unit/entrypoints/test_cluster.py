"""entrypoints.cluster: SageMaker's description of hosts and GPUs -> this host's torchrun command (pure)."""
from __future__ import annotations

import json
import sys

import pytest

from entrypoints.cluster import DEFAULT_RENDEZVOUS_PORT, Cluster, ClusterError

TWO_HOSTS = {"SM_HOSTS": '["algo-1", "algo-2"]', "SM_CURRENT_HOST": "algo-2", "SM_NUM_GPUS": "4",
             "SM_NETWORK_INTERFACE_NAME": "eth0"}


def test_one_cpu_host_needs_no_torchrun(tmp_path):
    cluster = Cluster.from_env({}, tmp_path)
    assert (cluster.hosts, cluster.node_rank, cluster.procs_per_host, cluster.distributed) == (
        ("localhost",), 0, 1, False)
    assert not Cluster.from_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1", "SM_NUM_GPUS": "1"},
                                tmp_path).distributed


def test_several_gpus_on_one_host_run_standalone(tmp_path):
    cluster = Cluster.from_env({"SM_HOSTS": '["algo-1"]', "SM_CURRENT_HOST": "algo-1", "SM_NUM_GPUS": "4"}, tmp_path)
    assert cluster.distributed
    assert cluster.torchrun_command() == [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=4",
                                          "--standalone", "-m", "entrypoints", "train"]
    assert cluster.worker_env() == {}


def test_each_host_gets_its_node_rank_and_the_first_host_is_the_rendezvous(tmp_path):
    cluster = Cluster.from_env(TWO_HOSTS, tmp_path)
    assert cluster.torchrun_command() == [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=4", "--nnodes=2", "--node_rank=1",
        "--master_addr=algo-1", f"--master_port={DEFAULT_RENDEZVOUS_PORT}", "-m", "entrypoints", "train"]
    assert cluster.worker_env() == {"GLOO_SOCKET_IFNAME": "eth0", "NCCL_SOCKET_IFNAME": "eth0"}
    assert cluster.describe() == "host algo-2 (2 of 2), 4 process(es) here, 8 in all"
    first = Cluster.from_env({**TWO_HOSTS, "SM_CURRENT_HOST": "algo-1"}, tmp_path)
    assert "--node_rank=0" in first.torchrun_command()


def test_cpu_hosts_run_one_process_each(tmp_path):
    cluster = Cluster.from_env({**TWO_HOSTS, "SM_NUM_GPUS": "0"}, tmp_path)
    assert cluster.distributed and "--nproc_per_node=1" in cluster.torchrun_command()


def test_rendezvous_can_be_moved(tmp_path):
    env = {**TWO_HOSTS, "SMTX_RENDEZVOUS_ADDR": "127.0.0.1", "SMTX_RENDEZVOUS_PORT": "29123"}
    command = Cluster.from_env(env, tmp_path).torchrun_command()
    assert "--master_addr=127.0.0.1" in command and "--master_port=29123" in command


def test_resourceconfig_json_is_read_when_the_variables_are_missing(tmp_path):
    config = tmp_path / "input" / "config"
    config.mkdir(parents=True)
    (config / "resourceconfig.json").write_text(json.dumps(
        {"current_host": "algo-3", "hosts": ["algo-1", "algo-2", "algo-3"], "network_interface_name": "ethwe"}))
    cluster = Cluster.from_env({"SM_NUM_GPUS": "1"}, tmp_path)
    assert (cluster.node_rank, len(cluster.hosts), cluster.network_interface) == (2, 3, "ethwe")
    assert "--nnodes=3" in cluster.torchrun_command()


def test_a_current_host_outside_the_host_list_is_refused(tmp_path):
    with pytest.raises(ClusterError, match=r"SM_CURRENT_HOST='algo-9' is not among SM_HOSTS=\['algo-1', 'algo-2'\]"):
        Cluster.from_env({**TWO_HOSTS, "SM_CURRENT_HOST": "algo-9"}, tmp_path)
