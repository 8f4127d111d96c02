"""plait-sagemaker: local mode with real processes, AWS mode with real boto3 against moto.

AWS mode talks to the moto server started by the ``moto_server`` fixture (see its docstring
for what its wrapper changes in moto's SageMaker: jobs stay InProgress until a rule ends
them, stop works, the model artifact is written).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import plait
import pytest
import sagemaker_flows as flows
from plait.engine.execution import RunOptions, build_engine
from plait.model.settings import Settings
from plait.model.status import ErrorKind, Phase
from plait.plugins.registry import build_registry
from plait.service.run import encode_inputs
from plait.storage.blobs import BlobStore
from plait.storage.events import EventStore
from plait.testing import assert_secret_nowhere
from plait.testing.lifecycle import (
    LifecycleCase,
    TaskTypeLifecycleTests,
    make_context,
    poll_until_done,
    processes_outliving,
)
from plait.types.engine import engine as type_engine
from plait_sagemaker import training_job
from plait_sagemaker.aws import CredentialsError
from plait_sagemaker.hooks import SageMakerTask
from plait_sagemaker.job import job_name, pack_folder

if TYPE_CHECKING:  # conftest by name is ambiguous when several plugin folders run at once
    from conftest import StandIn


def model_uri(tmp_path: Path, weights: str) -> str:
    """The blob URI of a model.tar.gz holding ``weights.txt`` (packing is reproducible)."""
    folder = tmp_path / "expected-model"
    folder.mkdir(exist_ok=True)
    (folder / "weights.txt").write_text(weights)
    return uri_of(tmp_path, pack_folder(folder, tmp_path / "expected.tar.gz"))


def uri_of(tmp_path: Path, tarball: Path) -> str:
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    return BlobStore(str(tmp_path / "blobs")).uri("cas", digest[:2], digest, "model.tar.gz")


def data_file(tmp_path: Path, lines: int = 4) -> dict[str, str]:
    """A File input literal in the lifecycle contexts' blob store."""
    src = tmp_path / "rows.csv"
    src.write_text("".join(f"{i},{2 * i}\n" for i in range(lines)))
    return {"uri": BlobStore(str(tmp_path / "blobs")).put_file(src)}


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


# ---------------------------------------------------------------------------------------
# The lifecycle suite, in both modes
# ---------------------------------------------------------------------------------------


class TestLocalModeLifecycle(TaskTypeLifecycleTests):
    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        marker = tmp_path / "starts"
        return LifecycleCase(
            new_task_type=SageMakerTask,
            quick=flows.local_train.template, quick_inputs={"data": data_file(tmp_path), "epochs": 2},
            expected_outputs={"model": {"uri": model_uri(tmp_path, "epochs=2 scale=1.0 rows=4\n")}},
            slow=flows.local_slow.template, slow_inputs={"marker": str(marker), "seconds": 300.0},  # aborted by every test: outlasts the attach tests' watch (twice its start)
            starts=lambda: lines(marker), timeout=30,
        )


class TestAwsModeLifecycle(TaskTypeLifecycleTests):
    @pytest.fixture(autouse=True)
    def _stand_in(self, stand_in: StandIn) -> None:
        self.stand_in = stand_in

    def case(self, tmp_path: Path) -> LifecycleCase:
        type_engine()
        for attempt in ("lifecycle/quick/1", "lifecycle/quick/2"):  # the slow ones run until stopped
            self.stand_in.rule(job_name(make_context(tmp_path, attempt, {})), status="Completed", after=0.2)
        return LifecycleCase(
            new_task_type=SageMakerTask,
            quick=flows.aws_train.template, quick_inputs={"data": data_file(tmp_path), "epochs": 2},
            expected_outputs={"model": {"uri": uri_of(tmp_path, self.stand_in.model)}},
            slow=flows.aws_slow.template, slow_inputs={"marker": "unused", "seconds": 60.0},
            starts=lambda: len(self.stand_in.created()), timeout=30,
        )


# ---------------------------------------------------------------------------------------
# Local mode
# ---------------------------------------------------------------------------------------


def test_a_workflow_trains_locally_and_a_python_task_reads_the_model():
    execution = plait.run(flows.fit_and_read, {"n": 5, "scale": 2.0})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    # the data frame reached the script as a channel (5 rows), the scalar input as a
    # hyperparameter next to the static one, and the model File reached the next task
    assert execution.outputs == {"o0": "epochs=3 scale=2.0 rows=5\n"}


def test_local_mode_follows_sagemakers_container_contract(tmp_path):
    type_engine()
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "contract/1", {"data": data_file(tmp_path, 3), "epochs": 7})
    handle = task_type.submit(ctx, flows.local_train.template)
    assert poll_until_done(task_type, ctx, handle, 30).phase == Phase.SUCCEEDED
    root = Path(handle["root"])
    seen = json.loads((root / "output" / "data" / "seen.json").read_text())
    env = seen["env"]
    assert seen["argv"] == ["--epochs", "7"]  # script mode: hyperparameters as arguments
    assert seen["channels"] == {"data": ["rows.csv"]}
    assert env["SM_CHANNELS"] == '["data"]' and env["SM_CHANNEL_DATA"] == str(root / "input" / "data" / "data")
    assert env["SM_HPS"] == '{"epochs":7}' and env["SM_HP_EPOCHS"] == "7"
    assert env["SM_MODEL_DIR"] == str(root / "model")
    assert env["SM_OUTPUT_DATA_DIR"] == str(root / "output" / "data")
    assert env["SM_OUTPUT_DIR"] == str(root / "output") and env["SM_INPUT_DIR"] == str(root / "input")
    assert env["SM_CURRENT_HOST"] == "algo-1" and env["SM_HOSTS"] == '["algo-1"]'
    assert int(env["SM_NUM_CPUS"]) >= 1 and int(env["SM_NUM_GPUS"]) >= 0
    assert json.loads(env["SM_TRAINING_ENV"])["hyperparameters"] == {"epochs": 7}
    assert env["TRAINING_JOB_NAME"] == handle["job"] == job_name(ctx)
    assert seen["cwd"] == str(root / "code")
    assert seen["config"]["hyperparameters.json"] == {"epochs": "7"}
    assert seen["config"]["resourceconfig.json"]["current_host"] == "algo-1"
    assert seen["config"]["inputdataconfig.json"] == {
        "data": {"TrainingInputMode": "File", "S3DistributionType": "FullyReplicated", "RecordWrapperType": "None"}}
    assert (root / "code" / "helper.py").exists()  # the whole source_dir was shipped
    task_type.cleanup(ctx, handle)
    assert not (root / "input" / "data").exists(), "cleanup left the copied input data behind"


def test_a_failed_script_reports_what_it_wrote_to_output_failure(tmp_path):
    type_engine()
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "fail/1", {"message": "label column missing in 3 of 10 files"})
    handle = task_type.submit(ctx, flows.local_fail.template)
    status = poll_until_done(task_type, ctx, handle, 30)
    assert status.phase == Phase.FAILED and status.error_kind == ErrorKind.USER
    assert status.message == "the training script exited with code 3: label column missing in 3 of 10 files"
    task_type.cleanup(ctx, handle)


def test_without_output_failure_the_message_is_the_end_of_stderr(tmp_path):
    type_engine()
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "fail/2", {"message": ""})
    handle = task_type.submit(ctx, flows.local_fail.template)
    status = poll_until_done(task_type, ctx, handle, 30)
    assert status.phase == Phase.FAILED
    assert "ValueError: column 'label' is missing" in status.message
    assert Path(status.log_links["stderr"]).read_text().startswith("Traceback")
    task_type.cleanup(ctx, handle)


def test_abort_kills_the_script_and_reports_aborted(tmp_path):
    type_engine()
    marker = tmp_path / "starts"
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "abort/1", {"marker": str(marker), "seconds": 60.0})
    handle = task_type.submit(ctx, flows.local_slow.template)
    while not marker.exists():
        time.sleep(0.02)
    task_type.abort(ctx, handle)
    assert poll_until_done(task_type, ctx, handle, 10).phase == Phase.ABORTED
    assert processes_outliving(handle["workdir"]) == [], "the training script outlived its abort"
    task_type.cleanup(ctx, handle)


def test_PLAIT_SAGEMAKER_MODE_local_runs_an_aws_task_on_this_machine(monkeypatch):
    monkeypatch.setenv("PLAIT_SAGEMAKER_MODE", "local")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing there: AWS is never asked
    execution = plait.run(flows.fit_on_aws, {"n": 4, "scale": 0.5})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": "epochs=1 scale=0.5 rows=4\n"}


def test_a_one_letter_hyperparameter_is_passed_as_a_single_dash_argument(tmp_path):
    type_engine()
    task = flows.local_job("sm-one-letter", "train.py", inputs={"data": plait.File, "e": int},
                           hyperparameters={"lr": 0.5})
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "one-letter/1", {"data": data_file(tmp_path), "e": 4})
    handle = task_type.submit(ctx, task.template)
    assert poll_until_done(task_type, ctx, handle, 30).phase == Phase.SUCCEEDED
    seen = json.loads((Path(handle["root"]) / "output" / "data" / "seen.json").read_text())
    task_type.cleanup(ctx, handle)
    assert seen["argv"] == ["-e", "4", "--lr", "0.5"]


def test_a_shell_entry_point_runs_with_bin_sh(tmp_path):
    import os

    script = tmp_path / "train.sh"  # not executable: only an interpreter can run it
    script.write_text('readlink /proc/$$/exe > "$SM_MODEL_DIR/shell.txt"\necho "args: $*" >> "$SM_MODEL_DIR/shell.txt"\n')
    type_engine()
    task = training_job("sm-shell", script, inputs={"n": int}, connection="local")
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "shell/1", {"n": 3})
    handle = task_type.submit(ctx, task.template)
    status = poll_until_done(task_type, ctx, handle, 30)
    task_type.cleanup(ctx, handle)
    assert status.phase == Phase.SUCCEEDED, status.message
    shell, args = (Path(handle["root"]) / "model" / "shell.txt").read_text().splitlines()
    assert shell == os.path.realpath("/bin/sh") and args == "args: -n 3"


def test_the_tasks_aws_secrets_are_not_passed_to_a_local_script(tmp_path, monkeypatch):
    # The keys only as resolved secrets (as from $PLAIT_HOME/secrets/), not in the environment:
    # a local script inherits the engine's environment, and that is all it gets.
    key_id, secret = "AKIALOCALCANARY01", "local-canary-secret-8b1e"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", *(f"PLAIT_SECRET_{k}" for k in flows.AWS_KEYS)):
        monkeypatch.delenv(name, raising=False)
    script = tmp_path / "dump_env.py"
    script.write_text("import json, os\nfrom pathlib import Path\n"
                      "Path(os.environ['SM_MODEL_DIR'], 'env.json').write_text(json.dumps(dict(os.environ)))\n")
    type_engine()
    task = training_job("sm-env", script, connection="local", secrets=flows.AWS_KEYS)
    task_type = SageMakerTask()
    ctx = make_context(tmp_path, "env/1", {}, secrets={"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})
    handle = task_type.submit(ctx, task.template)
    status = poll_until_done(task_type, ctx, handle, 30)
    task_type.cleanup(ctx, handle)
    assert status.phase == Phase.SUCCEEDED, status.message
    env = (Path(handle["root"]) / "model" / "env.json").read_text()
    assert key_id not in env and secret not in env, "the script was given the task's AWS secrets"


def test_the_local_pool_is_per_instance_type_with_a_token_per_instance():
    task = training_job("pooled", flows.SCRIPTS / "train.py", instance_type="ml.g5.xlarge", instance_count=3,
                        connection="local").template
    task_type = SageMakerTask()
    config = task_type.config_model.model_validate(task.config)
    assert task_type.pools(task, config) == {"sagemaker:local/ml.g5.xlarge": 3}


# ---------------------------------------------------------------------------------------
# Compile-time checks
# ---------------------------------------------------------------------------------------


def compile_one(task: plait.Task) -> None:
    @plait.workflow
    def wf() -> None:
        task()

    _ = wf.spec


@pytest.mark.parametrize(("options", "error"), [
    ({"entry_point": "nowhere.py"}, r"no entry point 'nowhere.py' in source_dir"),
    ({"outputs": {"model": str}}, r"a training job has one output, its model artifact .* as a plait.File.*\(got model: str\)"),
    ({"instance_type": "m5.large"}, r"instance_type 'm5.large' is not a SageMaker instance type"),
    ({"role_arn": None}, r"AWS mode needs role_arn="),
    ({"output_s3_uri": None}, r"AWS mode needs output_s3_uri="),
    ({"output_s3_uri": "bucket/prefix"}, r"output_s3_uri 'bucket/prefix' is not an S3 URI"),
    ({"hyperparameters": {"sagemaker_program": "x"}}, r"hyperparameter 'sagemaker_program': names starting with 'sagemaker_' are SageMaker's own"),
    ({"image_uri": None}, r"AWS mode needs image_uri=, the training container"),
])
def test_bad_configuration_is_a_compile_error_naming_the_task(options, error):
    settings = {**flows.AWS, "source_dir": flows.SCRIPTS, "entry_point": "train.py", **options}
    task = training_job("bad-job", **settings)
    with pytest.raises(plait.CompileError, match=f"sagemaker task 'bad-job': {error}"):
        compile_one(task)


def test_a_script_outside_a_source_dir_must_exist(tmp_path):
    with pytest.raises(plait.CompileError, match=r"no entry point script at .*missing.py"):
        compile_one(training_job("ghost", tmp_path / "missing.py", connection="local"))


def test_an_invalid_value_is_reported_when_the_task_is_defined():
    with pytest.raises(plait.CompileError, match=r"sagemaker task 'zero': instance_count: .*greater than or equal to 1"):
        training_job("zero", flows.SCRIPTS / "train.py", instance_count=0)


def test_local_mode_needs_no_aws_settings(monkeypatch):
    compile_one(training_job("offline", "train.py", source_dir=flows.SCRIPTS, connection="local"))
    monkeypatch.setenv("PLAIT_SAGEMAKER_MODE", "local")
    compile_one(training_job("switched", "train.py", source_dir=flows.SCRIPTS))


# ---------------------------------------------------------------------------------------
# AWS mode, against the moto stand-in
# ---------------------------------------------------------------------------------------


def aws_context(tmp_path: Path, attempt: str, **inputs):
    return make_context(tmp_path, attempt, {"data": data_file(tmp_path), "epochs": 2, **inputs})


def test_submit_uploads_channels_and_code_and_creates_the_job(stand_in, tmp_path):
    type_engine()
    task_type = SageMakerTask()
    ctx = aws_context(tmp_path, "exec/train/1")
    handle = task_type.submit(ctx, flows.aws_train.template)
    name = handle["job"]
    assert name == job_name(ctx) and len(name) <= 63
    job = stand_in.sagemaker.describe_training_job(TrainingJobName=name)
    assert job["TrainingJobStatus"] == "InProgress"
    hps = job["HyperParameters"]
    assert hps["epochs"] == "2"  # the scalar input is a hyperparameter (JSON, as the SDK sends it)
    assert json.loads(hps["sagemaker_program"]) == "train.py"
    assert json.loads(hps["sagemaker_submit_directory"]) == f"s3://{flows.BUCKET}/jobs/{name}/code/sourcedir.tar.gz"
    (channel,) = job["InputDataConfig"]
    assert channel["ChannelName"] == "data"
    assert channel["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{flows.BUCKET}/jobs/{name}/input/data/"
    assert stand_in.keys(flows.BUCKET) == [f"jobs/{name}/code/sourcedir.tar.gz", f"jobs/{name}/input/data/rows.csv"]
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    assert json.loads(json.dumps(handle)) == handle and "testing" not in json.dumps(handle)
    task_type.abort(ctx, handle)
    task_type.cleanup(ctx, handle)


def test_max_runtime_and_volume_size_reach_create_training_job(stand_in, tmp_path):
    type_engine()
    task = flows.aws_job("sm-aws-limits", "train.py", inputs={"data": plait.File, "epochs": int},
                         max_runtime_s=5400, volume_size_gb=75)
    task_type = SageMakerTask()
    ctx = aws_context(tmp_path, "exec/limits/1")
    handle = task_type.submit(ctx, task.template)
    job = stand_in.sagemaker.describe_training_job(TrainingJobName=handle["job"])
    task_type.abort(ctx, handle)
    task_type.cleanup(ctx, handle)
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 5400
    assert job["ResourceConfig"]["VolumeSizeInGB"] == 75


def test_submitting_twice_attaches_to_the_one_job(stand_in, tmp_path):
    type_engine()
    ctx = aws_context(tmp_path, "exec/twice/1")
    first = SageMakerTask().submit(ctx, flows.aws_train.template)
    second = SageMakerTask().submit(aws_context(tmp_path, "exec/twice/1"), flows.aws_train.template)
    assert first == second
    assert stand_in.created() == [first["job"]]


def test_a_completed_job_gives_its_model_artifact_as_the_file_output(stand_in, tmp_path):
    type_engine()
    stand_in.rule(status="Completed")
    task_type = SageMakerTask()
    ctx = aws_context(tmp_path, "exec/done/1")
    handle = task_type.submit(ctx, flows.aws_train.template)
    status = poll_until_done(task_type, ctx, handle, 10)
    assert status.phase == Phase.SUCCEEDED, status.message
    assert ctx.blobs.read_bytes(status.outputs["model"]["uri"]) == stand_in.model.read_bytes()
    assert status.log_links["model"] == f"s3://{flows.BUCKET}/jobs/{handle['job']}/output/model.tar.gz"


@pytest.mark.parametrize(("reason", "retryable", "kind"), [
    ("CapacityError: Unable to provision requested ML compute capacity.", True, ErrorKind.SYSTEM),
    ("InternalServerError: We encountered an internal error. Please try again.", True, ErrorKind.SYSTEM),
    ("ThrottlingException: Rate exceeded", True, ErrorKind.SYSTEM),
    ("ClientError: Please ensure the role has access to s3://bucket/data", False, ErrorKind.USER),
    ("AlgorithmError: ExecuteUserScriptError: exit code 1", True, ErrorKind.USER),
])
def test_a_failed_job_reports_its_reason_and_whose_fault_it_is(stand_in, tmp_path, reason, retryable, kind):
    type_engine()
    stand_in.rule(status="Failed", reason=reason)
    task_type = SageMakerTask()
    ctx = aws_context(tmp_path, "exec/failed/1")
    handle = task_type.submit(ctx, flows.aws_train.template)
    status = poll_until_done(task_type, ctx, handle, 10)
    assert status.phase == Phase.FAILED
    assert status.message == f"training job {handle['job']} failed: {reason}"
    assert (status.retryable, status.error_kind) == (retryable, kind)


def test_abort_stops_the_job_and_a_stopped_job_is_aborted(stand_in, tmp_path):
    type_engine()
    task_type = SageMakerTask()
    ctx = aws_context(tmp_path, "exec/stop/1")
    handle = task_type.submit(ctx, flows.aws_train.template)
    assert task_type.poll(ctx, handle).phase == Phase.RUNNING
    task_type.abort(ctx, handle)
    assert stand_in.stopped() == [handle["job"]]
    assert task_type.poll(ctx, handle).message.startswith("Stopping")
    assert poll_until_done(task_type, ctx, handle, 10).phase == Phase.ABORTED
    task_type.abort(ctx, handle)  # already stopped: nothing to do, no error
    assert stand_in.stopped() == [handle["job"]]


def test_cleanup_deletes_what_submit_uploaded_and_keeps_the_model(stand_in, tmp_path):
    type_engine()
    stand_in.rule(status="Completed")
    task_type = SageMakerTask()
    ctx = aws_context(tmp_path, "exec/clean/1")
    handle = task_type.submit(ctx, flows.aws_train.template)
    poll_until_done(task_type, ctx, handle, 10)
    name = handle["job"]
    assert stand_in.keys(flows.BUCKET, f"jobs/{name}/input/") and stand_in.keys(flows.BUCKET, f"jobs/{name}/code/")
    task_type.cleanup(ctx, handle)
    task_type.cleanup(ctx, handle)
    assert stand_in.keys(flows.BUCKET) == [f"jobs/{name}/output/model.tar.gz"]


def test_the_aws_pool_is_per_account_region_and_instance_type(stand_in):
    task = training_job("pooled", "train.py", source_dir=flows.SCRIPTS, instance_type="ml.p4d.24xlarge",
                        instance_count=2, **{**flows.AWS, "region": "eu-west-1"}).template
    task_type = SageMakerTask()
    config = task_type.config_model.model_validate(task.config)
    assert task_type.pools(task, config) == {f"sagemaker:{flows.ACCOUNT}/eu-west-1/ml.p4d.24xlarge": 2}


def test_a_workflow_trains_on_aws_and_a_python_task_reads_the_model(stand_in):
    stand_in.rule(status="Completed", after=0.2)
    execution = plait.run(flows.fit_on_aws, {"n": 3})
    assert execution.phase == Phase.SUCCEEDED, execution.error
    assert execution.outputs == {"o0": "trained in the stand-in\n"}
    assert len(stand_in.created()) == 1


def test_missing_credentials_is_a_clear_error(stand_in, tmp_path, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    type_engine()
    with pytest.raises(CredentialsError, match=r"found no AWS credentials\. Set AWS_ACCESS_KEY_ID and "
                                               r"AWS_SECRET_ACCESS_KEY.*PLAIT_SECRET_AWS_ACCESS_KEY_ID"):
        SageMakerTask().submit(aws_context(tmp_path, "exec/nocreds/1"), flows.aws_train.template)
    # through the engine (a fresh one: the shared registry's task type may hold a session
    # from an earlier test's environment)
    engine = build_engine(registry=build_registry())
    try:
        execution = plait.run(flows.fit_on_aws, {"n": 2}, engine=engine)
    finally:
        engine.close()
    assert execution.phase == Phase.FAILED and "found no AWS credentials" in execution.error


def test_credentials_from_plait_secrets_never_leak(stand_in, tmp_path, monkeypatch, plait_home):
    key_id, secret = "AKIACANARY7QX2LEAK", "canary-secret-5f0d9e2b-do-not-print"
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)  # the keys must come from the secrets, not the environment
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("PLAIT_SECRET_AWS_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("PLAIT_SECRET_AWS_SECRET_ACCESS_KEY", secret)
    stand_in.rule(status="Completed", after=0.1)
    succeeded = plait.run(flows.fit_with_keys, {"n": 2})
    # a failure whose reason echoes the keys (as a careless service message might)
    stand_in.rule(status="Failed", reason=f"ClientError: access denied for {key_id} / {secret}")
    failed = plait.run(flows.fit_with_keys, {"n": 2})
    assert succeeded.phase == Phase.SUCCEEDED, succeeded.error
    assert failed.phase == Phase.FAILED and "access denied for *** / ***" in failed.error
    store = EventStore(Settings.from_env().db_url)
    for execution in (succeeded, failed):
        assert [e for e in store.events(execution.execution_id) if "handle" in (e.data or {})], "no handle"
    store.close()
    errors = {"succeeded error": succeeded.error or "", "failed error": failed.error or ""}
    for value in (key_id, secret):  # not under the plait home, in any row of the store, or in an error
        assert_secret_nowhere(value, home=plait_home, db_url=Settings.from_env().db_url, texts=errors)


# ---------------------------------------------------------------------------------------
# Tenant tokens
# ---------------------------------------------------------------------------------------


@pytest.fixture
def small_pool(monkeypatch):
    monkeypatch.setenv("PLAIT_POOLS", "sagemaker:local/ml.m5.large=2")
    engine = build_engine()
    yield engine
    engine.close()


def test_a_tenant_flooding_the_instance_pool_does_not_starve_another(small_pool, tmp_path):
    flood_log, small_log = tmp_path / "flood", tmp_path / "small"

    async def both():
        spec = flows.flood.spec
        big = asyncio.create_task(small_pool.run(
            spec, encode_inputs(flows.flood, {"n": 12, "log": str(flood_log), "seconds": 0.25}, small_pool),
            RunOptions(project="loud", domain="prod")))
        while not flood_log.exists() and not big.done():
            await asyncio.sleep(0.02)
        small = await small_pool.run(
            spec, encode_inputs(flows.flood, {"n": 2, "log": str(small_log), "seconds": 0.25}, small_pool),
            RunOptions(project="quiet", domain="prod"))
        return await big, small

    big, small = asyncio.run(both())
    assert big.phase.value == small.phase.value == "succeeded", (big.error, small.error)
    events = [e for e in small_pool.store.events(big.execution_id) if e.phase == "waiting_for_resources"]
    assert events and events[0].data["waiting"]["pool"] == "sagemaker:local/ml.m5.large"
    starts = sorted(float(line.split()[2]) for line in flood_log.read_text().splitlines() if line.startswith("start"))
    ends = sorted(float(line.split()[2]) for line in flood_log.read_text().splitlines() if line.startswith("end"))
    small_end = max(float(line.split()[2]) for line in small_log.read_text().splitlines())
    # never more than the pool's two instances at once, and the quiet tenant got its fair
    # half of them: it finished long before the flood did
    assert all(sum(s <= t for s in starts) - sum(e <= t for e in ends) <= 2 for t in starts)
    assert small_end < ends[len(ends) // 2]
    assert small_pool.tokens.snapshot()["sagemaker:local/ml.m5.large"]["used"] == 0, "a token leaked"
