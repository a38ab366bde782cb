"""Account hygiene for everything the launcher creates: tags, VPC, KMS keys and network isolation.

One ``Placement`` is checked once, before anything is created, and then asked for the pieces each SageMaker
request takes (``Tags``, ``VpcConfig``, ``KmsKeyId``, ``VolumeKmsKeyId``, ``EnableNetworkIsolation``), so a
training job, a model, an endpoint config and a transform job get the same settings from the same flags.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from launcher.errors import require

#: the tags every resource gets, whatever the user asks; ``smtx:command`` is added per command
CREATED_BY = {"smtx:created-by": "smtx-launcher"}
_SUBNET = re.compile(r"subnet-[0-9a-f]{8,17}")
_GROUP = re.compile(r"sg-[0-9a-f]{8,17}")
_KMS = re.compile(r"(arn:aws[\w-]*:kms:[\w-]+:\d{12}:(key|alias)/[\w/+=,.@-]+|alias/[\w/+=,.@-]+|"
                  r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})")
_TAG_KEY = re.compile(r"[\w .:/=+@-]{1,128}")
_TAG_VALUE = re.compile(r"[\w .:/=+@-]{0,256}")
#: instance families with local NVMe storage: SageMaker encrypts it itself and refuses a volume KMS key there
_LOCAL_STORAGE = re.compile(r"ml\.([a-z]+\d+[a-z]*d[a-z]*|g5|g6|g6e|p4de?|p5e?|p5en|inf2|trn1n?)\.")
MAX_TAGS = 50  # SageMaker's limit per resource
RESERVED_TAGS = 3  # smtx:created-by, smtx:command, and smtx:task on training jobs
MAX_OBJECT_TAGS = 10  # S3's limit per object


def parse_tags(items: list[str]) -> dict[str, str]:
    """``key=value`` flags as a dict; SettingError naming --tag for an item without ``=``."""
    pairs: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        require(bool(sep) and bool(key), "tag", item, "key=value (repeat --tag for several tags)")
        pairs[key] = value
    return pairs


@dataclass(frozen=True)
class Placement:
    """Where and how a resource is placed in the account; the defaults add only the ``smtx:*`` tags."""

    #: the user's tags (``--tag key=value``); ``aws:`` and ``smtx:`` keys are reserved
    tags: dict[str, str] = field(default_factory=dict)
    #: VPC subnets and security groups (both or neither): the containers run in your VPC
    subnets: tuple[str, ...] = ()
    security_groups: tuple[str, ...] = ()
    #: KMS key for the ML volumes and for what is written to S3 (model output, transform and async output)
    kms_key: str | None = None
    #: no network access from the container (it reads and writes S3 only through SageMaker)
    network_isolation: bool = False

    def __post_init__(self) -> None:
        for key, value in self.tags.items():
            require(bool(_TAG_KEY.fullmatch(key)) and not key.lower().startswith(("aws:", "smtx:")), "tag", key,
                    "a key of 1-128 letters, digits, spaces or _.:/=+-@, not starting with aws: or smtx: "
                    "(reserved)")
            require(bool(_TAG_VALUE.fullmatch(value)), "tag", f"{key}={value}",
                    "a value of at most 256 letters, digits, spaces or _.:/=+-@")
        require(len(self.tags) + RESERVED_TAGS <= MAX_TAGS, "tag", len(self.tags),
                f"at most {MAX_TAGS - RESERVED_TAGS} tags (SageMaker allows {MAX_TAGS}; the launcher adds up to "
                f"{RESERVED_TAGS})")
        for subnet in self.subnets:
            require(bool(_SUBNET.fullmatch(subnet)), "subnet", subnet, "a subnet id such as subnet-0abc1234")
        for group in self.security_groups:
            require(bool(_GROUP.fullmatch(group)), "security_group", group, "a group id such as sg-0abc1234")
        require(bool(self.subnets) == bool(self.security_groups), "subnet", list(self.subnets),
                "--subnet and --security-group together (SageMaker needs both for a VPC)")
        require(len(self.subnets) <= 16 and len(self.security_groups) <= 5, "subnet", list(self.subnets),
                "at most 16 subnets and 5 security groups")
        require(self.kms_key is None or bool(_KMS.fullmatch(self.kms_key)), "kms_key", self.kms_key,
                "a KMS key id, key ARN, alias/NAME or alias ARN")

    def tag_list(self, command: str) -> list[dict[str, str]]:
        """The ``Tags`` of a request: the user's, then ``smtx:created-by`` and ``smtx:command``."""
        every = {**self.tags, **CREATED_BY, "smtx:command": command}
        return [{"Key": key, "Value": value} for key, value in every.items()]

    def object_tagging(self, command: str) -> str:
        """The S3 ``Tagging`` of an object ``command`` writes: the same tags as its resources, URL-encoded.

        S3 allows 10 tags per object, fewer than SageMaker: a command that writes to S3 checks this before it
        writes or creates anything."""
        tags = {item["Key"]: item["Value"] for item in self.tag_list(command)}
        require(len(tags) <= MAX_OBJECT_TAGS, "tag", len(self.tags),
                f"at most {MAX_OBJECT_TAGS - len(CREATED_BY) - 1} tags where the command writes to S3 (S3 allows "
                f"{MAX_OBJECT_TAGS} per object; the launcher adds smtx:created-by and smtx:command)")
        return urlencode(tags)

    def vpc_config(self) -> dict[str, Any] | None:
        """``VpcConfig`` or None when no VPC was asked for."""
        if not self.subnets:
            return None
        return {"Subnets": list(self.subnets), "SecurityGroupIds": list(self.security_groups)}

    @property
    def in_vpc(self) -> bool:
        """Whether the containers run in the user's VPC."""
        return bool(self.subnets)

    def volume_key(self, instance_type: str) -> str | None:
        """The volume KMS key for ``instance_type``: None on instances with local NVMe storage, which SageMaker
        encrypts with a hardware key and where it refuses a VolumeKmsKeyId."""
        return None if self.kms_key is None or has_local_storage(instance_type) else self.kms_key

    def model_fields(self) -> dict[str, Any]:
        """The CreateModel fields besides the container: VPC and network isolation."""
        fields: dict[str, Any] = {"EnableNetworkIsolation": self.network_isolation}
        if self.vpc_config():
            fields["VpcConfig"] = self.vpc_config()
        return fields


def has_local_storage(instance_type: str) -> bool:
    """Whether ``instance_type`` has NVMe instance storage (ml.g4dn, ml.m5d, ml.p4d, ml.g5, ...)."""
    return bool(_LOCAL_STORAGE.match(instance_type))
