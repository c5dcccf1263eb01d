from django.tasks import task

from cobrador.jobs.runner import run_job


@task
def run_scheduled_job(name: str) -> dict:
    """Fired by django-ox once per schedule tick (see jobs/catalog.py)."""
    run = run_job(name)
    return {"job_run": run.pk, "status": run.status, "done": run.items_done, "failed": run.items_failed}
