"""Settings for `cobrador` subprocesses started by tests (see tests/processes.py): the real settings,
with a short lease (3 s unless COBRADOR_TASK_LOCK_TIMEOUT says otherwise) so a killed worker's task
is reclaimed within seconds, quick retries, and, when
COBRADOR_TEST_TICK_LOG names a file, a schedule firing every second that appends to it."""

import os

from cobrador.settings import *  # noqa: F403
from cobrador.settings import TASKS

TASKS["default"]["OPTIONS"].update({
    "LOCK_TIMEOUT": float(os.environ.get("COBRADOR_TASK_LOCK_TIMEOUT", "3")),
    "BACKOFF_INITIAL": 0.5,
    "BACKOFF_MAX": 2,
})

if os.environ.get("COBRADOR_TEST_TICK_LOG"):
    TASKS["default"]["OPTIONS"]["SCHEDULES"]["queue-test-tick"] = {
        "task": "tests.queue_tasks.record_tick",
        "every": 1,
        "kwargs": {"path": os.environ["COBRADOR_TEST_TICK_LOG"]},
    }
