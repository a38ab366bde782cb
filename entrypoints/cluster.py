"""The hosts and GPUs of a SageMaker training job, and the torchrun command that uses all of them.

SageMaker describes the cluster in ``SM_HOSTS`` (a JSON list), ``SM_CURRENT_HOST``, ``SM_NUM_GPUS`` and
``SM_NETWORK_INTERFACE_NAME``, and again in ``<base>/input/config/resourceconfig.json``. One torchrun starts on
every host with the same ``--nnodes`` and its own ``--node_rank`` (its place in the host list); the first host is
the rendezvous. Global rank 0 therefore lives on the first host, and it alone writes the model.

``SMTX_RENDEZVOUS_ADDR`` / ``SMTX_RENDEZVOUS_PORT`` replace the first host's name and port 29500 where that name
does not resolve or the port is taken: the multi-host test runs two "hosts" on 127.0.0.1 that way.
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

#: torchrun's own default port; SageMaker leaves it free on its hosts
DEFAULT_RENDEZVOUS_PORT = 29500


class ClusterError(ValueError):
    """SageMaker's description of the cluster contradicts itself (the current host is not among the hosts)."""


@dataclass(frozen=True)
class Cluster:
    """This job's hosts, which one we are, and how many processes each runs."""

    hosts: tuple[str, ...]
    current_host: str
    gpus_per_host: int
    network_interface: str | None = None
    rendezvous_addr: str | None = None
    rendezvous_port: int = DEFAULT_RENDEZVOUS_PORT

    @classmethod
    def from_env(cls, env: Mapping[str, str], base: Path) -> "Cluster":
        """From SageMaker's variables, falling back to resourceconfig.json, then to one local host."""
        resource_file = base / "input" / "config" / "resourceconfig.json"
        resource = json.loads(resource_file.read_text(encoding="utf-8")) if resource_file.is_file() else {}
        hosts = tuple(json.loads(env["SM_HOSTS"])) if env.get("SM_HOSTS") else tuple(resource.get("hosts", ()))
        current = env.get("SM_CURRENT_HOST") or resource.get("current_host") or (hosts[0] if hosts else "localhost")
        hosts = hosts or (current,)
        if current not in hosts:
            raise ClusterError(f"SM_CURRENT_HOST={current!r} is not among SM_HOSTS={list(hosts)}")
        return cls(
            hosts=hosts, current_host=current, gpus_per_host=int(env.get("SM_NUM_GPUS", "0") or 0),
            network_interface=env.get("SM_NETWORK_INTERFACE_NAME") or resource.get("network_interface_name"),
            rendezvous_addr=env.get("SMTX_RENDEZVOUS_ADDR") or None,
            rendezvous_port=int(env.get("SMTX_RENDEZVOUS_PORT") or DEFAULT_RENDEZVOUS_PORT),
        )

    @property
    def node_rank(self) -> int:
        return self.hosts.index(self.current_host)

    @property
    def procs_per_host(self) -> int:
        """One process per GPU; one on a CPU host."""
        return max(1, self.gpus_per_host)

    @property
    def distributed(self) -> bool:
        return len(self.hosts) > 1 or self.procs_per_host > 1

    def torchrun_command(self) -> list[str]:
        """torchrun for this host: standalone on one host (it picks a free port), static rendezvous across hosts."""
        head = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={self.procs_per_host}"]
        if len(self.hosts) == 1:
            return head + ["--standalone", "-m", "entrypoints", "train"]
        return head + [f"--nnodes={len(self.hosts)}", f"--node_rank={self.node_rank}",
                       f"--master_addr={self.rendezvous_addr or self.hosts[0]}",
                       f"--master_port={self.rendezvous_port}", "-m", "entrypoints", "train"]

    def worker_env(self) -> dict[str, str]:
        """Variables the workers need beyond SageMaker's: the interface gloo and NCCL talk over."""
        if not self.network_interface or len(self.hosts) == 1:
            return {}
        return {"GLOO_SOCKET_IFNAME": self.network_interface, "NCCL_SOCKET_IFNAME": self.network_interface}

    def describe(self) -> str:
        """One log line: which host of how many, and how many processes it starts."""
        return (f"host {self.current_host} ({self.node_rank + 1} of {len(self.hosts)}), "
                f"{self.procs_per_host} process(es) here, {len(self.hosts) * self.procs_per_host} in all")
