"""``python moto_sagemaker.py -H HOST -p PORT``: the moto server, with training jobs that behave.

moto's own SageMaker training jobs are ``Completed`` the moment they are created, have no
``StopTrainingJob``, accept a second job of the same name, and never write their model
artifact. This wrapper patches moto's SageMaker backend in the server's process, then runs
``moto.server`` as usual (everything else, S3 and STS included, is moto unchanged):

* a new job is ``InProgress`` until a rule says otherwise; a rule is JSON in the folder
  ``$MOTO_SAGEMAKER_CONTROL``: ``<job name>.json`` for one job, else ``default.json`` (read
  when the job is created), e.g. ``{"status": "Completed", "after": 0.3, "model": "/path"}``
  or ``{"status": "Failed", "reason": "AlgorithmError: ..."}``; the change happens at the
  first DescribeTrainingJob ``after`` seconds past creation;
* on completion the server writes the rule's ``model`` file (a model.tar.gz) to the job's
  ``ModelArtifacts.S3ModelArtifacts`` in moto's S3, as SageMaker would;
* ``StopTrainingJob`` works: InProgress -> Stopping (one describe) -> Stopped, and it is a
  ValidationException for a job that already ended or does not exist, as on AWS;
* creating a job whose name exists is ``ResourceInUse``, as on AWS;
* each created job's name is appended to ``created`` and each stop to ``stopped`` in that
  folder, so a test can count them.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

from moto.core.responses import EmptyResult
from moto.s3.models import s3_backends
from moto.sagemaker import models, responses
from moto.sagemaker.exceptions import ResourceInUseException, ValidationError

CONTROL = Path(__import__("os").environ["MOTO_SAGEMAKER_CONTROL"])
_lock = threading.Lock()


def _rule(name: str) -> dict[str, Any] | None:
    for candidate in (CONTROL / f"{name}.json", CONTROL / "default.json"):
        if candidate.exists():
            return dict(json.loads(candidate.read_text()))
    return None


def _log(what: str, name: str) -> None:
    with _lock, open(CONTROL / what, "a") as fh:
        fh.write(name + "\n")


_original_init = models.FakeTrainingJob.__init__


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _original_init(self, *args, **kwargs)
    self.training_job_status = "InProgress"
    self.secondary_status = "Training"
    self.training_end_time = None
    self.created_at = time.monotonic()
    self.rule = _rule(self.training_job_name)  # the default rule as it was at creation


_original_create = models.SageMakerModelBackend.create_training_job


def _create(self: Any, training_job_name: str, **kwargs: Any) -> Any:
    if training_job_name in self.training_jobs:
        arn = models.FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
        raise ResourceInUseException(f"Training job names must be unique within an AWS account and region, "
                                     f"and a training job with this name already exists ({arn})")
    job = _original_create(self, training_job_name=training_job_name, **kwargs)
    _log("created", training_job_name)
    return job


def _advance(backend: Any, job: Any) -> None:
    if job.training_job_status == "Stopping":
        if job.stop_seen:  # a describe has reported Stopping once: now it has stopped
            job.training_job_status = job.secondary_status = "Stopped"
        job.stop_seen = True
        return
    if job.training_job_status != "InProgress":
        return
    own = CONTROL / f"{job.training_job_name}.json"
    rule = json.loads(own.read_text()) if own.exists() else job.rule
    if not rule or rule.get("status", "InProgress") == "InProgress":
        return
    if time.monotonic() - job.created_at < float(rule.get("after", 0)):
        return
    if rule["status"] == "Completed" and rule.get("model"):
        bucket, _, key = job.model_artifacts["S3ModelArtifacts"].removeprefix("s3://").partition("/")
        s3 = s3_backends[backend.account_id]["aws"]
        s3.put_object(bucket, key, Path(rule["model"]).read_bytes())
    job.training_job_status = job.secondary_status = rule["status"]
    if rule["status"] == "Failed":
        job.failure_reason = rule.get("reason", "AlgorithmError: the stand-in was told to fail")


_original_describe = models.SageMakerModelBackend.describe_training_job


def _describe(self: Any, training_job_name: str) -> dict[str, Any]:
    job = self.training_jobs.get(training_job_name)
    if job is not None:
        _advance(self, job)
    return dict(_original_describe(self, training_job_name))


def _stop(self: Any, training_job_name: str) -> None:
    job = self.training_jobs.get(training_job_name)
    if job is None:
        arn = models.FakeTrainingJob.arn_formatter(training_job_name, self.account_id, self.region_name)
        raise ValidationError(message=f"Could not find training job '{arn}'.")
    if job.training_job_status != "InProgress":
        raise ValidationError(message=f"The request was rejected because the training job is in status "
                                      f"{job.training_job_status}.")
    job.training_job_status = job.secondary_status = "Stopping"
    job.stop_seen = False
    _log("stopped", training_job_name)


def _stop_response(self: Any) -> Any:
    self.sagemaker_backend.stop_training_job(self._get_param("TrainingJobName"))
    return EmptyResult()


models.FakeTrainingJob.__init__ = _init
models.SageMakerModelBackend.create_training_job = _create
models.SageMakerModelBackend.describe_training_job = _describe
models.SageMakerModelBackend.stop_training_job = _stop
responses.SageMakerResponse.stop_training_job = _stop_response

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main(sys.argv[1:]))
