"""SageMaker's serving environment -> one typed config, validated once (bad values are a clear startup error)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from handlers.environment import assemble_with


class ServeConfigError(ValueError):
    """An environment variable has a value the server cannot use."""


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ServeConfigError(f"{name}={raw!r} is not valid; expected an integer") from None
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ServeConfigError(f"{name}={value} is out of range; expected {bound}")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise ServeConfigError(f"{name}={env[name]!r} is not valid; expected true or false")


@dataclass(frozen=True)
class ServeConfig:
    base: Path
    port: int
    multi_model: bool
    batch_transform: bool
    max_payload_mb: int
    batch_strategy: str
    max_concurrent_transforms: int
    workers: int
    #: None: the archive's model-config.yaml decides
    batch_size: int | None
    max_batch_delay_ms: int | None
    response_timeout_s: int
    #: whether the environment named the response timeout (else the archive's model-config.yaml decides)
    response_timeout_set: bool
    startup_timeout_s: int
    drain_timeout_s: int
    #: Batch Transform's AssembleWith (see handlers.environment)
    assemble_with: str = "Line"

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def models_root(self) -> Path:
        """Where SageMaker mounts multi-model archives; the only place models may be loaded from."""
        return self.base / "models"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ServeConfig":
        strategy = env.get("SAGEMAKER_BATCH_STRATEGY", "MULTI_RECORD").strip().upper() or "MULTI_RECORD"
        if strategy not in ("SINGLE_RECORD", "MULTI_RECORD"):
            raise ServeConfigError(f"SAGEMAKER_BATCH_STRATEGY={strategy!r} is not valid; "
                                   "expected SINGLE_RECORD or MULTI_RECORD")
        timeout_name = "SAGEMAKER_TS_RESPONSE_TIMEOUT" if env.get("SAGEMAKER_TS_RESPONSE_TIMEOUT") else \
            "SAGEMAKER_MODEL_SERVER_TIMEOUT"
        batch_size = _int(env, "SAGEMAKER_TS_BATCH_SIZE", 0, 1, 4096) if env.get("SAGEMAKER_TS_BATCH_SIZE") else None
        delay = _int(env, "SAGEMAKER_TS_MAX_BATCH_DELAY", 0, 0, 60000) if env.get("SAGEMAKER_TS_MAX_BATCH_DELAY") else None
        try:
            assembly = assemble_with(env)
        except ValueError as exc:
            raise ServeConfigError(str(exc)) from None
        return cls(
            assemble_with=assembly,
            base=Path(env.get("SAGEMAKER_BASE_DIR", "/opt/ml")),
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", 8080, 1, 65535),
            multi_model=_bool(env, "SAGEMAKER_MULTI_MODEL"),
            batch_transform=_bool(env, "SAGEMAKER_BATCH"),
            max_payload_mb=_int(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6, 1, 100),
            batch_strategy=strategy,
            max_concurrent_transforms=_int(env, "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", 1, 1, 1000),
            workers=_int(env, "SAGEMAKER_MODEL_SERVER_WORKERS", 1, 1, 64),
            batch_size=batch_size,
            max_batch_delay_ms=delay,
            response_timeout_s=_int(env, timeout_name, 120, 1, 3600),
            response_timeout_set=bool(env.get(timeout_name, "").strip()),
            startup_timeout_s=_int(env, "SMTX_STARTUP_TIMEOUT", 300, 5, 3600),
            drain_timeout_s=_int(env, "SMTX_DRAIN_TIMEOUT", 20, 0, 25),
        )

    def overrides(self) -> dict:
        """Per-model settings from the environment, written over the archive's model-config.yaml (which TorchServe
        0.12 prefers to any server-wide setting): workers always, the others where the environment names them."""
        values: dict = {"minWorkers": self.workers, "maxWorkers": self.workers}
        if self.batch_size is not None:
            values["batchSize"] = self.batch_size
        if self.max_batch_delay_ms is not None:
            values["maxBatchDelay"] = self.max_batch_delay_ms
        if self.response_timeout_set:
            values["responseTimeout"] = self.response_timeout_s
        return values
