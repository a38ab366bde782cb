"""delete and cleanup: the launcher removes only what it made, asks first, and refuses names that do not exist."""
from __future__ import annotations

import io
import re

import pytest

from launcher.aws import Clients
from launcher.endpoints.cleanup import delete_endpoint, delete_model
from launcher.endpoints.deploy import deploy
from launcher.inventory import list_rows
from launcher.s3_cleanup import confirm
from tests.helpers import EXAMPLES
from tests.helpers.launcher_account import BUCKET, MODEL_DATA, SERVING, cli, created


# bad input is refused before anything is created (issue 23: the defects a new user met) ------------------------------
def test_delete_of_a_missing_endpoint_is_bad_input_and_deletes_nothing(account: Clients, capsys) -> None:
    """Issue 23, defect 8: exit codes of unknown names."""
    account.s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=b"stand-in")
    status, out, _ = cli(capsys, "deploy", "--model-data", f"s3://{BUCKET}/m/model.tar.gz", "--instance-type",
                         "ml.m5.xlarge")
    endpoint = re.search(r"endpoint (\S+) \(config", out).group(1)  # type: ignore[union-attr]
    before = created(account)
    status, out, err = cli(capsys, "delete", "--endpoint", endpoint, "--endpoint", "smtx-ep-none")
    assert status == 2 and not out
    assert err == ("error: endpoint='smtx-ep-none': expected an existing endpoint (python -m launcher list shows "
                   "them)\n")
    assert created(account) == before  # the existing one was not deleted either
    status, _, err = cli(capsys, "delete", "--model", "smtx-model-none")
    assert status == 2 and "model='smtx-model-none': expected an existing model" in err
    status, out, _ = cli(capsys, "delete", "--endpoint", endpoint)
    assert status == 0 and f"deleted endpoint {endpoint}\n" in out and "not found" not in out


# account hygiene: tags, VPC, KMS, network isolation and the image per instance type ----------------------------------
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cleanup_deletes_only_what_the_launcher_wrote_and_asks_first(simulated_account: Clients,
                                                                     capsys: pytest.CaptureFixture[str],
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    assert cli(capsys, "upload", str(EXAMPLES / "classif"), "--task", "classif")[0] == 0
    keep = ["smtx/output/smtx-classif-20260101-120000-1a2b3c4d/output/model.tar.gz", "smtx/mme/a.tar.gz",
            "smtx/notes-by-hand.txt"]
    for key in keep + ["smtx/smtx-transform-20260101-120000-1a2b3c4d/input/r.jsonl",
                       "smtx/async-input/smtx-async-20260101-120000-1a2b3c4d/r.jsonl"]:
        simulated_account.s3.put_object(Bucket=BUCKET, Key=key, Body=b"x")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))  # CI: no terminal
    status, out, err = cli(capsys, "cleanup")
    assert status == 2 and "pass --yes" in err and out.count(f"s3://{BUCKET}/smtx/") == 3
    status, out, _ = cli(capsys, "cleanup", "--dry-run")
    assert status == 0 and "nothing deleted" in out
    status, out, _ = cli(capsys, "cleanup", "--yes")
    assert status == 0 and "deleted 5 objects" in out  # three data files, one transform input, one async input
    left = sorted(o["Key"] for o in simulated_account.s3.list_objects_v2(Bucket=BUCKET, Prefix="smtx/")["Contents"])
    assert left == sorted(keep)
    assert not confirm("delete?", False, _Terminal(), ask=lambda _: "n")
    assert confirm("delete?", False, _Terminal(), ask=lambda _: "y")


# the Python API against moto as it is (each test plays SageMaker's part itself) --------------------------------------
def test_delete_removes_what_deploy_created_and_list_shows_what_exists(model_account: Clients) -> None:
    made = deploy(model_account, MODEL_DATA, SERVING, wait=False)
    other = deploy(model_account, MODEL_DATA, SERVING, wait=False)
    listed = {row.name: row for row in list_rows(model_account)["endpoints"]}  # what `launcher list` prints
    assert set(listed) == {made.endpoint, other.endpoint} and listed[made.endpoint].status == "InService"
    assert [row.name for row in list_rows(model_account, name_contains=made.endpoint)["models"]] == [made.model]
    assert delete_endpoint(model_account, made.endpoint) == [
        f"deleted endpoint {made.endpoint}", f"deleted endpoint config {made.endpoint_config}",
        f"deleted model {made.model}"]
    assert all("not found" in line for line in delete_endpoint(model_account, made.endpoint))
    assert [row.name for row in list_rows(model_account)["endpoints"]] == [other.endpoint]
    assert delete_model(model_account, other.model) == f"deleted model {other.model}"
