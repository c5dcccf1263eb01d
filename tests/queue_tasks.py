"""Tasks for the queue contract tests. Each execution appends one line to a file (O_APPEND, so lines
from several processes never interleave): `<event> <label> <pid>`."""

import os
import time

from django.tasks import task


def append_line(path: str, *words) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, (" ".join(str(w) for w in words) + "\n").encode())
    finally:
        os.close(fd)


def read_lines(path) -> list[list[str]]:
    try:
        with open(path) as f:
            return [line.split() for line in f if line.strip()]
    except FileNotFoundError:
        return []


@task
def record(path: str, label: str) -> str:
    append_line(path, "ran", label, os.getpid())
    return label


@task
def fail_times(path: str, label: str, failures: int) -> str:
    """Raise on the first `failures` executions, then succeed."""
    previous = sum(1 for words in read_lines(path) if words[1] == label)
    if previous < failures:
        append_line(path, "failed", label, os.getpid())
        raise RuntimeError(f"{label}: failure {previous + 1} of {failures}")
    append_line(path, "ran", label, os.getpid())
    return label


@task(max_attempts=2)
def always_fail(path: str, label: str) -> None:
    append_line(path, "failed", label, os.getpid())
    raise RuntimeError(f"{label} always fails")


@task
def slow_record(path: str, label: str, seconds: float) -> str:
    """Writes `started`, works for `seconds`, then writes `ran`: a worker killed in between leaves
    only the `started` line."""
    append_line(path, "started", label, os.getpid())
    time.sleep(seconds)
    append_line(path, "ran", label, os.getpid())
    return label


@task(takes_context=True)
def record_tick(context, path: str) -> None:
    append_line(path, "tick", context.task_result.id, os.getpid())
