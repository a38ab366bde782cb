"""deploy-multi and add-model: a multi-model endpoint and the archives added under its prefix."""
from __future__ import annotations

import pytest

from launcher.aws import Clients
from launcher.endpoints.invoke import invoke
from launcher.endpoints.multimodel import add_model, deploy_multi_model
from launcher.errors import SettingError
from launcher.s3 import S3Uri, list_keys
from tests.helpers.launcher_account import BUCKET, INSTANT, MODEL_DATA, REGION, SERVING, cli, create_bucket
from tests.helpers.moto_sagemaker import answer_invocations


# bad input is refused before anything is created (issue 12: the defects a new user met) ------------------------------
def test_add_model_names_the_missing_key(empty_account: Clients, capsys) -> None:
    """Issue 12, defect 6: a missing artifact is named."""
    create_bucket(empty_account)
    status, _, err = cli(capsys, "add-model", "--model-data", f"s3://{BUCKET}/models/none/model.tar.gz",
                         "--model-prefix", f"s3://{BUCKET}/mme")
    assert status == 2 and "404" not in err
    assert f"bucket '{BUCKET}' has no key 'models/none/model.tar.gz'" in err


# the Python API against moto as it is (each test plays SageMaker's part itself) --------------------------------------
def test_multi_model_endpoint_serves_archives_added_under_its_prefix(model_account: Clients) -> None:
    prefix = f"s3://{BUCKET}/mme"
    made = deploy_multi_model(model_account, prefix, SERVING, INSTANT, emit=lambda _: None)
    container = model_account.sagemaker.describe_model(ModelName=made.model)["PrimaryContainer"]
    assert container["Mode"] == "MultiModel" and container["ModelDataUrl"] == f"{prefix}/"
    assert container["Environment"]["SAGEMAKER_MULTI_MODEL"] == "true"
    assert add_model(model_account, MODEL_DATA, prefix) == "classif.tar.gz"
    assert add_model(model_account, MODEL_DATA, prefix, "classif-v2.tar.gz") == "classif-v2.tar.gz"
    assert list_keys(model_account.s3, S3Uri.parse(prefix).as_prefix()) == ["classif-v2.tar.gz", "classif.tar.gz"]
    with pytest.raises(SettingError, match="not already under"):
        add_model(model_account, MODEL_DATA, prefix, "classif.tar.gz")
    answer_invocations(REGION)
    assert invoke(model_account, made.endpoint, [{"text": "hi"}], target_model="classif-v2.tar.gz") == [
        {"pred": "positive", "proba": 0.9, "model": "classif-v2.tar.gz"}]
