"""Stand-ins, on the moto side, for what SageMaker does and moto does not (the launcher's tests only).

moto records SageMaker calls but trains, serves and transforms nothing: a training job is Completed the moment
it is created, an endpoint answers ``body``, a transform job writes no output. The helpers here drive a job
through states, answer invocations like our server, and write transform output, by changing moto's stored
state in this process (in-process ``mock_aws`` or a ``ThreadedMotoServer`` started here). Against a separate
``moto_server`` process none of this applies: there, answers are queued through moto's own API (see
docs/sagemaker.md and tests/launcher/test_docs.py).
"""
from __future__ import annotations

import base64
import io
import json
import tarfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import requests
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.core.responses import ActionResult
from moto.s3.models import s3_backends
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sagemakerruntime.models import sagemakerruntime_backends
from moto.server import ThreadedMotoServer

from launcher.aws import TRAINING_LOG_GROUP, AwsSettings, Clients

Predict = Callable[[dict[str, Any], str | None], dict[str, Any]]


@contextmanager
def offline_account(monkeypatch: Any, tmp_path: Any, region: str) -> Iterator[Clients]:
    """moto in-process on an empty account, with this machine's AWS settings kept out, and clients on it."""
    for var in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(var, raising=False)
    for name, value in {"AWS_CONFIG_FILE": str(tmp_path / "no-config"), "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": region}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield Clients(AwsSettings(region=region))


def run_cli(capsys: Any, env: dict[str, str], *argv: str, timeout_s: int = 5) -> tuple[int, str, str]:
    """``python -m launcher ARGV`` in this process (no polling delay): exit status, stdout, stderr; a user never
    sees a traceback."""
    from launcher.cli import main

    status = main(["--poll-s", "0", "--timeout-s", str(timeout_s), *argv], env=env)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


@contextmanager
def in_process_moto_server() -> Iterator[str]:
    """A fresh moto server in this process, on 127.0.0.1 and a port the OS picks; yields its URL (for
    AWS_ENDPOINT_URL)."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        yield url
    finally:
        server.stop()


def echo_predict(record: dict[str, Any], target_model: str | None) -> dict[str, Any]:
    """A stand-in model: ``{"pred": "positive"}``, or an error object for a record without text (like our server)."""
    if not isinstance(record, dict) or not isinstance(record.get("text"), str):
        return {"error": "record has no 'text' string"}
    return {"pred": "positive", "proba": 0.9, **({"model": target_model} if target_model else {})}


@dataclass
class Step:
    """One state of a training job: applied by ``TrainingJobDriver`` on one poll."""

    status: str
    secondary: str
    message: str = ""
    log_lines: list[str] = field(default_factory=list)
    failure_reason: str | None = None
    final_metrics: dict[str, float] | None = None


class TrainingJobDriver:
    """Moves a moto training job through ``steps``, one per call: pass ``driver.sleep`` as ``Poller.sleep``."""

    def __init__(self, job_name: str, steps: list[Step], logs: Any, region: str, instance: str = "algo-1") -> None:
        self.job_name = job_name
        self.logs = logs
        self.region = region
        self.stream = f"{job_name}/{instance}-{int(time.time())}"
        self._steps: Iterator[Step] = iter(steps)

    def _job(self) -> Any:
        return sagemaker_backends[DEFAULT_ACCOUNT_ID][self.region].training_jobs[self.job_name]

    def start(self) -> None:
        """Put the job back to InProgress with no transitions, then apply the first step."""
        job = self._job()
        job.training_job_status, job.secondary_status = "InProgress", "Starting"
        job.secondary_status_transitions, job.final_metric_data_list = [], []
        self.sleep(0.0)

    def sleep(self, _: float) -> None:
        """Apply the next step (nothing once the steps run out)."""
        step = next(self._steps, None)
        if step is not None:
            self.apply(step)

    def apply(self, step: Step) -> None:
        """Set the job's status, add a transition, write log lines and final metrics."""
        job = self._job()
        job.training_job_status, job.secondary_status = step.status, step.secondary
        job.secondary_status_transitions.append(
            {"Status": step.secondary, "StartTime": job.creation_time, "StatusMessage": step.message})
        if step.failure_reason is not None:
            job.failure_reason = step.failure_reason
        if step.final_metrics is not None:
            job.final_metric_data_list = [{"MetricName": k, "Value": v, "Timestamp": job.creation_time}
                                          for k, v in step.final_metrics.items()]
        if step.log_lines:
            self._write_logs(step.log_lines)

    def _write_logs(self, lines: list[str]) -> None:
        groups = self.logs.describe_log_groups(logGroupNamePrefix=TRAINING_LOG_GROUP)["logGroups"]
        if not groups:
            self.logs.create_log_group(logGroupName=TRAINING_LOG_GROUP)
        streams = self.logs.describe_log_streams(logGroupName=TRAINING_LOG_GROUP,
                                                 logStreamNamePrefix=self.stream)["logStreams"]
        if not streams:
            self.logs.create_log_stream(logGroupName=TRAINING_LOG_GROUP, logStreamName=self.stream)
        now = int(time.time() * 1000)
        self.logs.put_log_events(logGroupName=TRAINING_LOG_GROUP, logStreamName=self.stream,
                                 logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])


def _patch(backend: Any, method: str, replacement: Callable[..., Any]) -> None:
    """Replace one backend method on this instance (moto's reset() drops it); patching twice keeps the first."""
    if not getattr(getattr(backend, method), "_smtx_stand_in", False):
        replacement._smtx_stand_in = True  # type: ignore[attr-defined]
        setattr(backend, method, replacement)


def answer_invocations(region: str, predict: Predict = echo_predict) -> None:
    """Make moto's invoke_endpoint answer like our server: per record, in the content type asked for."""
    backend = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][region]

    def invoke_endpoint(endpoint_name: str, unique_repr: bytes) -> tuple[str, str, str, str]:
        request = json.loads(base64.b64decode(unique_repr))
        target = next((v for k, v in request.items() if k.lower() == "x-amzn-sagemaker-target-model"), None)
        accept = request.get("Accept") or "application/json"
        body = request["Body"]
        if accept == "application/jsonlines":
            answers = [predict(json.loads(line), target) for line in body.splitlines() if line.strip()]
            return "".join(json.dumps(a) + "\n" for a in answers), accept, "AllTraffic", ""
        answers = [predict(record, target) for record in json.loads(body)["data"]]
        return json.dumps({"predictions": answers}), accept, "AllTraffic", ""

    _patch(backend, "invoke_endpoint", invoke_endpoint)


def answer_async_invocations(region: str, predict: Predict = echo_predict) -> None:
    """Make moto's invoke_endpoint_async answer like SageMaker over our server: read the input object (jsonlines),
    write one answer line per input line under the endpoint's S3OutputPath (moto writes a stand-in to a bucket
    of its own), or the error under its S3FailurePath when the input is not JSON lines."""
    backend = sagemakerruntime_backends[DEFAULT_ACCOUNT_ID][region]

    def invoke_endpoint_async(endpoint_name: str, input_location: str) -> tuple[str, str]:
        sagemaker = sagemaker_backends[DEFAULT_ACCOUNT_ID][region]
        config = sagemaker.endpoint_configs[sagemaker.endpoints[endpoint_name].endpoint_config_name]
        output = config.async_inference_config["OutputConfig"]
        name = f"{int(time.time() * 1e6)}.out"
        s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
        bucket, _, key = input_location[len("s3://"):].partition("/")
        lines = s3.get_object(bucket, key).value.decode("utf-8").splitlines()
        try:
            body, target = "".join(json.dumps(predict(json.loads(line), None)) + "\n" for line in lines), "S3OutputPath"
        except json.JSONDecodeError as exc:
            body, target = f"input is not JSON lines: {exc}", "S3FailurePath"
        out_bucket, _, out_prefix = output[target][len("s3://"):].partition("/")
        s3.put_object(out_bucket, f"{out_prefix}{name}", body.encode("utf-8"))
        return f"{output['S3OutputPath']}{name}", f"{output['S3FailurePath']}{name}"

    _patch(backend, "invoke_endpoint_async", invoke_endpoint_async)


def write_transform_output(region: str, predict: Predict = echo_predict) -> None:
    """Make every transform job created from now on write ``{input}.out`` like SageMaker would."""
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][region]
    create = backend.create_transform_job

    def create_and_answer(**kwargs: Any) -> Any:
        job = create(**kwargs)
        source = kwargs["transform_input"]["DataSource"]["S3DataSource"]["S3Uri"]
        output = kwargs["transform_output"]["S3OutputPath"]
        _answer_objects(source, output, predict)
        return job

    _patch(backend, "create_transform_job", create_and_answer)


def _answer_objects(source: str, output: str, predict: Predict) -> None:
    s3 = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    bucket, _, prefix = source[len("s3://"):].partition("/")
    out_bucket, _, out_prefix = output[len("s3://"):].partition("/")
    for key in [k for k in s3.get_bucket(bucket).keys if k.startswith(prefix)]:
        lines = s3.get_object(bucket, key).value.decode("utf-8").splitlines()
        answers = "".join(json.dumps(_predict_line(line, predict)) + "\n" for line in lines)
        name = key[len(prefix):].lstrip("/") or key.rsplit("/", 1)[-1]
        s3.put_object(out_bucket, f"{out_prefix.rstrip('/')}/{name}.out", answers.encode("utf-8"))


def _predict_line(line: str, predict: Predict) -> dict[str, Any]:
    try:
        return predict(json.loads(line), None)
    except json.JSONDecodeError:
        return {"error": "record is not JSON"}


def write_model_artifacts(region: str) -> None:
    """Make every training job created from now on leave a (stand-in) model.tar.gz where SageMaker puts it."""
    backend = sagemaker_backends[DEFAULT_ACCOUNT_ID][region]
    create = backend.create_training_job

    def create_and_write(**kwargs: Any) -> Any:
        job = create(**kwargs)
        bucket, _, key = job.model_artifacts["S3ModelArtifacts"][len("s3://"):].partition("/")
        s3_backends[DEFAULT_ACCOUNT_ID]["aws"].put_object(bucket, key, _stand_in_archive())
        return job

    _patch(backend, "create_training_job", create_and_write)


def _stand_in_archive() -> bytes:
    note = b"stand-in written by tests/helpers/moto_sagemaker.py; moto trains nothing\n"
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("README.txt")
        info.size = len(note)
        archive.addfile(info, io.BytesIO(note))
    return buffer.getvalue()


#: endpoint name -> the FailureReason its next update ends with (the old config keeps serving)
UPDATE_FAILURES: dict[str, str] = {}


def accept_endpoint_updates() -> None:
    """Give moto the UpdateEndpoint it lacks (moto 5.2 answers "not implemented"): the endpoint moves to the new
    config at once, or, when ``UPDATE_FAILURES`` names it, stays on the old one with a FailureReason, as SageMaker
    leaves an endpoint whose update failed. Patched on moto's response class, so it also works through a
    ThreadedMotoServer in this process (not through a separate moto_server process)."""

    def update_endpoint(self: SageMakerResponse) -> Any:
        name, config = self._get_param("EndpointName"), self._get_param("EndpointConfigName")
        backend = self.sagemaker_backend
        endpoint = backend.endpoints[name]
        described = backend.describe_endpoint_config(config)  # a missing config raises moto's ValidationError
        if name in UPDATE_FAILURES:
            endpoint.failure_reason = UPDATE_FAILURES.pop(name)
        else:
            endpoint.endpoint_config_name = config
            endpoint.production_variants = endpoint._process_production_variants(described["ProductionVariants"])
            endpoint.failure_reason = None
        endpoint.endpoint_status = "InService"
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]


def accept_transform_stops() -> None:
    """Give moto the StopTransformJob it lacks: the job ends Stopped at once."""

    def stop_transform_job(self: SageMakerResponse) -> Any:
        job = self.sagemaker_backend.transform_jobs[self._get_param("TransformJobName")]
        job.transform_job_status = "Stopped"
        return ActionResult({})

    SageMakerResponse.stop_transform_job = stop_transform_job  # type: ignore[attr-defined]


def accept_model_package_deletes() -> None:
    """Give moto the DeleteModelPackage and DeleteModelPackageGroup it lacks (a group with versions left is refused,
    as SageMaker refuses it)."""

    def delete_model_package(self: SageMakerResponse) -> Any:
        backend = self.sagemaker_backend
        arn = backend.model_package_name_mapping.get(self._get_param("ModelPackageName"))
        package = backend.model_packages.pop(arn, None) if arn else None
        if package is not None:
            backend.model_package_name_mapping.pop(package.model_package_name, None)
            backend.model_package_name_mapping.pop(package.arn, None)
        return ActionResult({})

    def delete_model_package_group(self: SageMakerResponse) -> Any:
        backend, name = self.sagemaker_backend, self._get_param("ModelPackageGroupName")
        if any(p.model_package_group_name == name for p in backend.model_packages.values()):
            raise ValidationError(message=f"Model package group {name} still has versions")
        backend.model_package_groups.pop(name, None)
        return ActionResult({})

    SageMakerResponse.delete_model_package = delete_model_package  # type: ignore[attr-defined]
    SageMakerResponse.delete_model_package_group = delete_model_package_group  # type: ignore[attr-defined]


def write_log_lines(logs: Any, group: str, stream: str, lines: list[str]) -> None:
    """Write CloudWatch lines as SageMaker's containers would (the group and stream are made when missing)."""
    if not logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]:
        logs.create_log_group(logGroupName=group)
    if not logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=stream)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)])


def simulate_sagemaker(region: str, predict: Predict = echo_predict) -> None:
    """All of the above: training leaves an archive, endpoints answer and update, transform jobs write output."""
    accept_endpoint_updates()
    accept_transform_stops()
    accept_model_package_deletes()
    write_model_artifacts(region)
    answer_invocations(region, predict)
    answer_async_invocations(region, predict)
    write_transform_output(region, predict)
