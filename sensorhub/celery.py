import os

from celery import Celery
from celery.signals import before_task_publish, task_postrun, task_prerun
from django.db import OperationalError

from sensorhub.logging import request_id_var, task_id_var

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sensorhub.settings")

# Database tasks retry a lost connection or a deadlock with backoff (the retry policy every app's tasks share).
DB_RETRY = {"autoretry_for": (OperationalError,), "retry_backoff": True, "retry_jitter": True, "max_retries": 3}

app = Celery("sensorhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@before_task_publish.connect
def _attach_request_id(headers=None, **kwargs):
    # The request id travels in the task headers so one reading can be traced from the HTTP request to the worker.
    request_id = request_id_var.get()
    if headers is not None and request_id and "request_id" not in headers:
        headers["request_id"] = request_id


@task_prerun.connect
def _bind_ids(task_id=None, task=None, **kwargs):
    task_id_var.set(task_id)
    request_id_var.set(getattr(task.request, "request_id", None) if task else None)


@task_postrun.connect
def _unbind_ids(**kwargs):
    task_id_var.set(None)
    request_id_var.set(None)
