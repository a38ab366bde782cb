"""The serving container's contract: every environment variable, its rule and its bounds, declared once, and the
content types.

SageMaker sets most of these (``SAGEMAKER_*``); ``SMTX_*`` are ours. One declaration (``ServeConfig``'s fields),
one parser:

- ``entrypoints.serve`` reads the table into a ``ServeConfig`` at startup (a bad value stops it, naming the
  variable and what was expected) and hands each worker the few values only it knows (``WorkerContext``);
- the TorchServe handler reads the same ``ServeConfig`` with the same rules, plus the ``WorkerContext``;
- the launcher checks and names the variables it sets on a model or a job from here too.

It lives in ``tasks`` because both sides import it: the server's code (shipped inside every archive, with
``tasks``) and the launcher, which runs on a laptop and imports no serving code. It imports nothing heavy and
reads only the mapping it is given.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

from tasks.serving_manifest import PRECISION_REQUESTS


class ServeConfigError(ValueError):
    """An environment variable has a value the server cannot use."""


@dataclass(frozen=True)
class Var:
    """One environment variable: its name, what it means, and the one rule that reads it."""

    name: str
    doc: str
    kind: str  # "int" | "bool" | "choice" | "path"
    #: the value when unset or blank; None means "not named" (the archive's own setting applies)
    default: Any = None
    low: int | None = None
    high: int | None = None
    choices: tuple[str, ...] = ()

    def expected(self) -> str:
        if self.kind == "int":
            return f"an integer between {self.low} and {self.high}"
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        return "a path"

    def parse(self, raw: str) -> Any:
        """The typed value of a non-blank string; ServeConfigError naming the variable otherwise."""
        value = raw.strip()
        if self.kind == "path":
            return Path(value)
        if self.kind == "bool" and value.lower() in ("true", "1", "false", "0"):
            return value.lower() in ("true", "1")
        if self.kind == "choice":
            for choice in self.choices:
                if value.lower() == choice.lower():
                    return choice
        if self.kind == "int":
            try:
                number = int(value)
            except ValueError:
                raise ServeConfigError(f"{self.name}={raw!r} is not valid; expected an integer") from None
            if self.low is not None and self.high is not None and self.low <= number <= self.high:
                return number
            raise ServeConfigError(f"{self.name}={number} is out of range; expected {self.expected()}")
        raise ServeConfigError(f"{self.name}={raw!r} is not valid; expected {self.expected()}")

    def read(self, env: Mapping[str, str]) -> Any:
        raw = env.get(self.name, "")
        return self.parse(raw) if raw.strip() else self.default

    def check(self, value: Any) -> str:
        """``value`` as the string to put in an environment, after the same check the container makes."""
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        self.parse(text)
        return text


_MAX = 10**9


def _var(name: str, doc: str, kind: str, default: Any = None, low: int | None = None, high: int | None = None,
         choices: tuple[str, ...] = ()) -> Any:
    """A ``ServeConfig`` field declared by its variable (the field's metadata holds the ``Var``)."""
    return field(metadata={"var": Var(name, doc, kind, default, low, high, choices)})


@dataclass(frozen=True)
class ServeConfig:
    """The whole serving environment, typed: one field per variable, declared here once with its rule and bounds.
    The field order is the order of the README's table."""

    base: Path = _var("SAGEMAKER_BASE_DIR", "root of model/, models/ and the rest of SageMaker's layout", "path",
                      Path("/opt/ml"))
    port: int = _var("SAGEMAKER_BIND_TO_PORT", "the port /ping and /invocations answer on", "int", 8080, 1, 65535)
    multi_model: bool = _var("SAGEMAKER_MULTI_MODEL", "serve the multi-model API from models/", "bool", False)
    batch_transform: bool = _var("SAGEMAKER_BATCH", "Batch Transform: a bad record answers an error line in place",
                                 "bool", False)
    max_payload_mb: int = _var("SAGEMAKER_MAX_PAYLOAD_IN_MB", "request and response size limit, MB (Batch "
                               "Transform: at most 100; asynchronous inference: up to 1 GB)", "int", 6, 1, 1024)
    batch_strategy: str = _var("SAGEMAKER_BATCH_STRATEGY", "Batch Transform's BatchStrategy", "choice",
                               "MULTI_RECORD", choices=("SINGLE_RECORD", "MULTI_RECORD"))
    async_inference: bool = _var("SMTX_ASYNC_INFERENCE", "asynchronous inference (the launcher sets it): as in "
                                 "Batch Transform, one answer line per input line and a bad record answers an error "
                                 "line in place", "bool", False)
    max_concurrent_transforms: int = _var("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS",
                                          "Batch Transform requests in flight (sizes the job queue)", "int", 1, 1, 1000)
    workers: int = _var("SAGEMAKER_MODEL_SERVER_WORKERS", "TorchServe workers per model", "int", 1, 1, 64)
    batch_size: int | None = _var("SAGEMAKER_TS_BATCH_SIZE", "requests TorchServe batches together (else the "
                                  "archive's)", "int", None, 1, 4096)
    max_batch_delay_ms: int | None = _var("SAGEMAKER_TS_MAX_BATCH_DELAY", "ms TorchServe waits to fill a batch "
                                          "(else the archive's; at least 1: TorchServe 0.12 reads 0 as unset and "
                                          "waits 100 ms)", "int", None, 1, 60000)
    ts_response_timeout_s: int | None = _var("SAGEMAKER_TS_RESPONSE_TIMEOUT", "s TorchServe waits for an answer "
                                             "(first choice)", "int", None, 1, 3600)
    model_server_timeout_s: int | None = _var("SAGEMAKER_MODEL_SERVER_TIMEOUT", "the same, when the one above is "
                                              "unset", "int", None, 1, 3600)
    startup_timeout_s: int = _var("SMTX_STARTUP_TIMEOUT", "s the model may take to load before serve gives up",
                                  "int", 300, 5, 3600)
    drain_timeout_s: int = _var("SMTX_DRAIN_TIMEOUT", "s SIGTERM waits for requests in flight", "int", 20, 0, 25)
    assemble_with: str = _var("SMTX_ASSEMBLE_WITH", "Batch Transform's AssembleWith, which SageMaker does not pass "
                              "on: under Line jsonlines answers end without a newline", "choice", "Line",
                              choices=("Line", "None"))
    threads_per_worker: int | None = _var("SMTX_THREADS_PER_WORKER", "intra-op threads per worker (else cores / "
                                          "workers)", "int", None, 1, 1024)
    max_records: int = _var("SMTX_MAX_RECORDS", "records per request (unset in Batch Transform: no limit, "
                            "SageMaker sizes mini-batches by bytes)", "int", 10_000, 1, _MAX)
    max_text_chars: int = _var("SMTX_MAX_TEXT_CHARS", "characters per text", "int", 100_000, 1, _MAX)
    #: the handler's ``Settings`` fields of the same names: one name per knob on its way through
    max_batch_size: int = _var("SMTX_MICRO_BATCH_SIZE", "records per forward pass", "int", 32, 1, 4096)
    max_tokens: int = _var("SMTX_MAX_BATCH_TOKENS", "tokens per forward pass", "int", 16_384, 1, _MAX)
    precision: str = _var("SMTX_PRECISION", "the CPU precision to serve: auto picks the fastest path the archive "
                          "gated that this CPU runs natively (AMX: bf16, VNNI: int8, else fp32); a path name "
                          "(onnx-fp32...) pins that path", "choice", "auto", choices=PRECISION_REQUESTS)
    #: the names of the variables the environment set (not blank)
    named: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "ServeConfig":
        named = frozenset(var.name for var in VARIABLES.values() if env.get(var.name, "").strip())
        return cls(**{name: var.read(env) for name, var in VARIABLES.items()}, named=named)

    def is_named(self, field_name: str) -> bool:
        """Whether the environment set the variable of ``field_name`` (else its default applies)."""
        return VARIABLES[field_name].name in self.named

    @property
    def model_dir(self) -> Path:
        return self.base / "model"

    @property
    def models_root(self) -> Path:
        """Where SageMaker mounts multi-model archives; the only place models may be loaded from."""
        return self.base / "models"

    @property
    def response_timeout_s(self) -> int:
        named = self.ts_response_timeout_s or self.model_server_timeout_s
        return named or DEFAULT_RESPONSE_TIMEOUT_S

    @property
    def response_timeout_set(self) -> bool:
        """Whether the environment named the response timeout (else the archive's model-config.yaml decides)."""
        return (self.ts_response_timeout_s or self.model_server_timeout_s) is not None

    @property
    def line_per_record(self) -> bool:
        """Batch Transform and asynchronous inference: every record answers on its own line, errors included, and
        requests are sized by bytes rather than records."""
        return self.batch_transform or self.async_inference

    def threads(self, cores: int) -> int:
        """Threads per worker: as set, or the machine's ``cores`` shared among the workers (oversubscribing
        collapses latency)."""
        return self.threads_per_worker or max(1, cores // self.workers)

    def overrides(self) -> dict[str, Any]:
        """Per-model settings from the environment, written over the archive's model-config.yaml (which TorchServe
        0.12 prefers to any server-wide setting): workers always, the others where the environment names them."""
        values: dict[str, Any] = {"minWorkers": self.workers, "maxWorkers": self.workers}
        if self.batch_size is not None:
            values["batchSize"] = self.batch_size
        if self.max_batch_delay_ms is not None:
            values["maxBatchDelay"] = self.max_batch_delay_ms
        if self.response_timeout_set:
            values["responseTimeout"] = self.response_timeout_s
        return values


#: ServeConfig field -> its variable: a view of the fields' declarations, in the README table's order
VARIABLES: dict[str, Var] = {f.name: f.metadata["var"] for f in fields(ServeConfig) if "var" in f.metadata}
DEFAULT_RESPONSE_TIMEOUT_S = 120
#: the two content types requests and answers use (``handlers.codecs`` accepts a few aliases of the second)
JSON, JSONLINES = "application/json", "application/jsonlines"


@dataclass(frozen=True)
class WorkerContext:
    """What ``serve`` (or the code starting TorchServe) hands each worker beyond SageMaker's variables."""

    #: where the handler leaves the reason a model failed to load (``/ping`` alone would still say Healthy)
    failure_dir: str | None = None
    #: one file per worker while it runs a batch, so a SIGTERM drain waits for running batches
    busy_dir: str | None = None
    #: multi-model: models load only from under this directory
    allowed_root: str | None = None
    #: TorchServe's max_response_size less a margin: the handler answers 413 rather than be killed by the frontend
    max_response_bytes: int | None = None

    _PREFIX = "SMTX_WORKER_"

    @classmethod
    def _names(cls) -> dict[str, str]:
        return {f.name: cls._PREFIX + f.name.upper() for f in fields(cls)}

    def to_env(self) -> dict[str, str]:
        """The variables to add to TorchServe's environment (only the values that are set)."""
        return {name: str(getattr(self, field)) for field, name in self._names().items()
                if getattr(self, field) is not None}

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "WorkerContext":
        values: dict[str, Any] = {field: env.get(name) or None for field, name in cls._names().items()}
        if values["max_response_bytes"] is not None:
            values["max_response_bytes"] = int(values["max_response_bytes"])
        return cls(**values)


def markdown_table() -> str:
    """The README's table of the serving environment, rendered from ``VARIABLES`` (a test keeps them equal)."""
    rows = ["| variable | meaning | default | valid |", "|---|---|---|---|"]
    for var in VARIABLES.values():
        default = "unset" if var.default is None else str(var.default).lower() if isinstance(var.default, bool) \
            else str(var.default)
        rows.append(f"| `{var.name}` | {var.doc} | {default} | {var.expected()} |")
    return "\n".join(rows)


if __name__ == "__main__":  # python -m tasks.serving_contract > the README's table
    print(markdown_table())
