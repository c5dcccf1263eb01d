"""`cobrador`: the operator's command line. Every command has --help, clear errors and a non-zero
exit status on failure."""

import argparse
import gc
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime


class CommandFailed(Exception):
    pass


def _setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cobrador.settings")
    import django
    from django.apps import apps

    if not apps.ready:  # main() may be called in a process that is already set up (tests)
        django.setup()


def _check_database() -> None:
    from cobrador.core.startup import StartupError, check_encryption_key

    try:
        check_encryption_key()
    except StartupError as exc:
        raise CommandFailed(str(exc)) from exc


def _migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=verbosity)


# --- up / web / worker -------------------------------------------------------------------------


def _bootstrap_first_run() -> list[str]:
    """On the very first run: a test-mode organization, an API key and an admin user, shown once."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from cobrador.organizations.models import Organization
    from cobrador.organizations.services import create_api_key, create_organization

    lines = []
    with transaction.atomic():
        if not Organization.objects.exists():
            organization = create_organization(name="My company", mode="test")
            _, key = create_api_key(organization=organization, name="created by cobrador up")
            lines += [f"  organization  {organization.public_id} (test mode)",
                      f"  API key       {key}   <- shown only now; keep it"]
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            lines += ["  admin user    admin", f"  password      {password}   <- shown only now; keep it"]
    return lines


def _granian_command(host: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", "4", "--log-level", "warning",
            "cobrador.wsgi:application"]


def _run_web_children(commands: list[list[str]]) -> int:
    """`_run_children` for a set that includes granian: its worker processes keep their Prometheus counters
    in files of one directory, summed at scrape time (prometheus-client's multi-process mode); a new
    directory per start, so no counter of a previous run is added in."""
    directory = tempfile.mkdtemp(prefix="cobrador-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        return _run_children(commands)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _collectstatic() -> None:
    from django.core.management import call_command

    call_command("collectstatic", interactive=False, verbosity=0)


def _run_children(commands: list[list[str]]) -> int:
    """Run child processes until one exits or we get SIGTERM/SIGINT; then stop them all cleanly."""
    children = [subprocess.Popen(cmd) for cmd in commands]
    stopping = threading.Event()

    def _stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    exit_code = 0
    while not stopping.is_set():
        for child in children:
            if child.poll() is not None:
                print(f"cobrador: a process exited with status {child.returncode}; stopping", file=sys.stderr)
                exit_code = child.returncode or 1
                stopping.set()
        stopping.wait(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def cmd_up(args) -> int:
    _setup_django()
    from django.conf import settings

    from cobrador.notifications.email_config import describe as describe_mailers

    _migrate()
    _check_database()
    _collectstatic()
    first_run = _bootstrap_first_run()
    base = f"http://{args.host}:{args.port}"
    print("cobrador is starting")
    print(f"  database      {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
          f"{settings.DATABASES['default']['NAME']}")
    print(f"  data dir      {settings.DATA_DIR}")
    print(f"  e-mail        {describe_mailers(settings.MAILERS)}")
    print(f"  API           {base}/v1/")
    print(f"  API docs      {base}/v1/docs")
    print(f"  admin         {base}/admin/")
    for line in first_run:
        print(line)
    print("Stop with Ctrl-C.", flush=True)
    worker = [sys.executable, "-m", "cobrador.cli", "worker", "--concurrency", str(args.concurrency)]
    return _run_web_children([_granian_command(args.host, args.port, args.web_workers), worker])


def cmd_web(args) -> int:
    _setup_django()
    _check_database()
    _collectstatic()
    print(f"cobrador web on http://{args.host}:{args.port}", flush=True)
    return _run_web_children([_granian_command(args.host, args.port, args.workers)])


def cmd_worker(args) -> int:
    _setup_django()
    from django.core.management import call_command

    from cobrador.core.outbox import drain_forever, drain_until_idle

    _check_database()
    # What is loaded by now lives as long as the process: keep the garbage collector from walking it on
    # every full collection (a sweep batch allocates hundreds of thousands of objects).
    gc.freeze()
    if args.drain:
        drain_until_idle()
        call_command("ox_worker", batch=True, concurrency=1, interval=0.1, verbosity=0)
        drain_until_idle()
        return 0
    stop = threading.Event()
    drainer = threading.Thread(target=drain_forever, args=(stop,), name="outbox-drainer", daemon=True)
    drainer.start()
    try:
        # django-ox runs the queue and fires the recurring schedules; it handles SIGTERM itself
        # (finishes what it is running, then returns).
        options = {"heartbeat_file": args.heartbeat_file} if args.heartbeat_file else {}
        call_command("ox_worker", concurrency=args.concurrency, interval=args.interval, verbosity=0, **options)
    finally:
        stop.set()
        drainer.join(timeout=30)
    return 0


# --- organizations and keys ---------------------------------------------------------------------


def cmd_org_create(args) -> int:
    _setup_django()
    from django.db import transaction

    from cobrador.organizations.services import create_api_key, create_organization

    name = args.name.strip()
    if not name:
        raise CommandFailed("NAME must not be empty")
    if len(name) > 200:
        raise CommandFailed("NAME must be at most 200 characters")
    if args.billing_email:
        from django.core.exceptions import ValidationError
        from django.core.validators import validate_email

        try:
            validate_email(args.billing_email)
        except ValidationError:
            raise CommandFailed(f"--billing-email {args.billing_email!r} is not an e-mail address") from None
    with transaction.atomic():
        organization = create_organization(name=name, mode=args.mode, billing_email=args.billing_email)
        _, key = create_api_key(organization=organization, name="created by cobrador org create")
    print(f"organization {organization.public_id} ({organization.mode} mode)")
    print(f"API key      {key}   <- shown only now; keep it")
    return 0


def _organization(public_id: str):
    from cobrador.organizations.models import Organization

    try:
        return Organization.objects.get(public_id=public_id)
    except Organization.DoesNotExist:
        raise CommandFailed(f"no organization {public_id!r}") from None


def cmd_key_create(args) -> int:
    _setup_django()
    from cobrador.organizations.services import create_api_key

    key, plaintext = create_api_key(organization=_organization(args.org), name=args.name)
    print(f"key {key.public_id}: {plaintext}   <- shown only now; keep it")
    return 0


def cmd_key_revoke(args) -> int:
    _setup_django()
    from cobrador.organizations.models import ApiKey
    from cobrador.organizations.services import revoke_api_key

    try:
        key = revoke_api_key(key_id=args.key_id)
    except ApiKey.DoesNotExist:
        raise CommandFailed(f"no API key {args.key_id!r} (see the admin's API keys page for ids)") from None
    print(f"revoked {key.public_id} ({key})")
    return 0


# --- jobs ---------------------------------------------------------------------------------------


def cmd_jobs_list(args) -> int:
    _setup_django()
    from django_ox.cron import CronExpression

    from cobrador.core import clock
    from cobrador.jobs.catalog import JOBS
    from cobrador.jobs.models import JobRun

    now = clock.now()
    rows = [("NAME", "CRON", "NEXT RUN (UTC)", "LAST RUN (UTC)", "RESULT")]
    for name, spec in JOBS.items():
        cron = spec.effective_cron
        try:
            next_run = CronExpression(cron).following(now.replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M") if cron else "off"
        except ValueError as exc:
            raise CommandFailed(f"job {name}: cron {cron!r} is invalid ({exc}); check {spec.env_var}") from None
        last = JobRun.objects.filter(job_name=name).order_by("-started_at").first()
        if last is None:
            last_at, result = "never", "-"
        else:
            last_at = last.started_at.strftime("%Y-%m-%d %H:%M:%S")
            result = f"{last.status}: {last.items_done} done, {last.items_failed} failed, {last.items_skipped} skipped"
        rows.append((name, cron or "off", next_run, last_at, result))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)))
    return 0


def _parse_at(value: str) -> datetime:
    from datetime import UTC

    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandFailed(f"--at {value!r} is not an ISO-8601 time (e.g. 2026-12-01T01:00:00Z)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def cmd_jobs_run(args) -> int:
    _setup_django()
    from django.conf import settings

    from cobrador.core import clock
    from cobrador.jobs.catalog import JOBS
    from cobrador.jobs.runner import run_job

    if args.name not in JOBS:
        raise CommandFailed(f"unknown job {args.name!r}; known jobs: {', '.join(JOBS)}")
    if args.at:
        at = _parse_at(args.at)
        if abs((at - clock.now()).total_seconds()) > 60 and not settings.TIME_TRAVEL:
            raise CommandFailed("--at other than now is refused unless COBRADOR_TIME_TRAVEL=1 is set")
        # The whole run sees `at` as now, so what it writes is stamped as of that time too.
        with clock.frozen_at(at):
            run = run_job(args.name, trigger="cli")
    else:
        run = run_job(args.name, trigger="cli")
    print(f"{run.job_name} as of {run.as_of:%Y-%m-%d %H:%M:%S} UTC: {run.status}; "
          f"{run.items_done} done, {run.items_failed} failed, {run.items_skipped} skipped")
    for kind, n in sorted(run.counts.items()):
        print(f"  {kind}: {n}")
    if run.error:
        print(run.error, file=sys.stderr)
    return 0 if run.status in ("succeeded", "partial") else 1


# --- sandbox ------------------------------------------------------------------------------------


def cmd_sandbox_pay(args) -> int:
    _setup_django()
    from cobrador.gateways.sandbox import SandboxPayFailed, send_sandbox_payment_callback
    from cobrador.payments.models import Payment

    try:
        payment = Payment.objects.select_related("gateway").get(public_id=args.payment_id)
    except Payment.DoesNotExist:
        raise CommandFailed(f"no payment {args.payment_id!r}") from None
    try:
        response = send_sandbox_payment_callback(payment)
    except SandboxPayFailed as exc:
        raise CommandFailed(str(exc)) from None
    except Exception as exc:  # httpx errors: the charge is paid, the callback can be sent again
        raise CommandFailed(f"the sandbox charge is paid but the callback could not be delivered "
                            f"({type(exc).__name__}: {exc}); run the command again to resend it") from None
    if not 200 <= response.status_code < 300:
        raise CommandFailed(f"the sandbox charge is paid but the callback was answered {response.status_code}; "
                            "run the command again to resend it")
    print(f"paid {payment.public_id} at the sandbox; callback delivered ({response.status_code})")
    return 0


# --- simulate ------------------------------------------------------------------------------------


def _positive(name: str, value: int, most: int) -> None:
    if not 1 <= value <= most:
        raise CommandFailed(f"{name} must be between 1 and {most}")


def cmd_simulate(args) -> int:
    from django.apps import apps

    from cobrador.simulation import environment

    _positive("--days", args.days, 3650)
    _positive("--accounts", args.accounts, 100_000)
    _positive("--resolution", args.resolution, 24 * 60)
    start = _parse_at(args.start) if args.start else None
    if apps.ready:  # called in a process that is already set up (tests): its database and data directory
        if args.database or args.dir:
            raise CommandFailed("--database and --dir only work in a fresh process (they are read at start-up)")
    else:
        environment.prepare(directory=args.dir, database=args.database)
    _setup_django()
    from datetime import timedelta

    from cobrador.simulation import run_simulation
    from cobrador.simulation.engine import Options, SimulationRefused
    from cobrador.simulation.report import render_json, render_text

    _migrate()
    _check_database()
    options = Options(days=args.days, accounts=args.accounts, seed=args.seed,
                      resolution=timedelta(minutes=args.resolution), follow=args.follow)
    if start is not None:
        options.start = start
    if not args.json and not args.quiet:
        print(f"simulating {args.days} days of {args.accounts} accounts (seed {args.seed})...", flush=True)
    try:
        simulation, summary = run_simulation(options)
    except SimulationRefused as exc:
        raise CommandFailed(str(exc)) from None
    print(render_json(simulation, summary) if args.json else render_text(simulation, summary, quiet=args.quiet))
    return 1 if summary["errors"] else 0


def cmd_manage(args) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cobrador.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["cobrador manage", *args.rest])
    return 0


# --- the parser ---------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cobrador", description="Billing automation that runs 24/7.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="migrate and run everything: web server, workers and schedules")
    up.add_argument("--host", default="127.0.0.1")
    up.add_argument("--port", type=int, default=8000)
    up.add_argument("--web-workers", type=int, default=2, help="web server processes (default 2)")
    up.add_argument("--concurrency", type=int, default=4, help="task threads in the worker (default 4)")
    up.set_defaults(func=cmd_up)

    web = sub.add_parser("web", help="run the web server (API, admin)")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--workers", type=int, default=2)
    web.set_defaults(func=cmd_web)

    worker = sub.add_parser("worker", help="run a worker: tasks, schedules and outbox delivery")
    worker.add_argument("--concurrency", type=int, default=4)
    worker.add_argument("--interval", type=float, default=0.5, help="idle poll interval in seconds")
    worker.add_argument("--drain", action="store_true", help="run until nothing is ready, then exit")
    worker.add_argument("--heartbeat-file", metavar="PATH",
                        help="touch PATH at every poll, for liveness probes (`cobrador manage ox_health "
                             "--heartbeat-file PATH`)")
    worker.set_defaults(func=cmd_worker)

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_command", required=True)
    org_create = org.add_parser("create", help="create an organization and print its id and a new API key")
    org_create.add_argument("name", metavar="NAME")
    org_create.add_argument("--mode", choices=["test", "live"], default="test")
    org_create.add_argument("--billing-email", default="")
    org_create.set_defaults(func=cmd_org_create)

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    key_create = key.add_parser("create", help="create an API key for an organization")
    key_create.add_argument("--org", required=True, metavar="ORG_ID")
    key_create.add_argument("--name", default="")
    key_create.set_defaults(func=cmd_key_create)
    key_revoke = key.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("key_id", metavar="KEY_ID")
    key_revoke.set_defaults(func=cmd_key_revoke)

    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="jobs_command", required=True)
    jobs_list = jobs.add_parser("list", help="the registered schedules, next fire time and last result")
    jobs_list.set_defaults(func=cmd_jobs_list)
    jobs_run = jobs.add_parser("run", help="run one sweep now, synchronously")
    jobs_run.add_argument("name", metavar="NAME")
    jobs_run.add_argument("--at", help="ISO-8601 time to run as of (needs COBRADOR_TIME_TRAVEL=1)")
    jobs_run.set_defaults(func=cmd_jobs_run)

    sandbox = sub.add_parser("sandbox", help="the built-in sandbox provider (test mode)").add_subparsers(
        dest="sandbox_command", required=True)
    sandbox_pay = sandbox.add_parser(
        "pay", help="pay a pending sandbox boleto or PIX and send its signed callback to COBRADOR_PUBLIC_URL")
    sandbox_pay.add_argument("payment_id", metavar="PAYMENT_ID")
    sandbox_pay.set_defaults(func=cmd_sandbox_pay)

    simulate = sub.add_parser(
        "simulate", help="run a demo organization and every job through simulated days; print a timeline",
        description="Creates a demo organization with a realistic mix of customers (plans, trials, coupons, "
                    "commitments, cards that decline, boleto and PIX payers) in a database of its own, runs every "
                    "registered job tick by tick through the simulated days, the customers acting through the API "
                    "and paying at the sandbox by signed callbacks, and prints a timeline and a summary. The "
                    "database, keys and the mails sent (.eml files) stay in the simulation's directory.")
    simulate.add_argument("--days", type=int, default=90, help="simulated days (default 90)")
    simulate.add_argument("--accounts", type=int, default=200, help="billing accounts (default 200)")
    simulate.add_argument("--seed", type=int, default=1, help="the same seed tells the same story (default 1)")
    simulate.add_argument("--start", help="ISO-8601 start of the simulated time (default 2026-02-02T00:00:00Z)")
    simulate.add_argument("--database", metavar="URL",
                          help="an empty database to use instead of a new SQLite file (e.g. postgres://...)")
    simulate.add_argument("--dir", metavar="PATH", help="the simulation's directory (default "
                          "<data dir>/simulations/<UTC time>)")
    simulate.add_argument("--resolution", type=int, default=360, metavar="MINUTES",
                          help="jobs firing more often than this run once per step of it (default 360)")
    simulate.add_argument("--follow", type=int, default=4, metavar="N",
                          help="featured accounts whose every step the timeline shows (default 4)")
    output = simulate.add_mutually_exclusive_group()
    output.add_argument("--quiet", action="store_true", help="print only the summary")
    output.add_argument("--json", action="store_true", help="print the summary and the timeline as JSON")
    simulate.set_defaults(func=cmd_simulate)

    manage = sub.add_parser("manage", help="Django's management commands (migrate, createsuperuser, ...)",
                            add_help=False)
    manage.add_argument("rest", nargs=argparse.REMAINDER)
    manage.set_defaults(func=cmd_manage)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["manage"]:
        # Everything after `manage` is Django's, options first included (`manage --help`), which
        # argparse's REMAINDER would refuse.
        return cmd_manage(argparse.Namespace(rest=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except CommandFailed as exc:
        print(f"cobrador: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        print(f"cobrador: error: {problem}", file=sys.stderr)
        return 2


def _database_problem(exc: Exception) -> str | None:
    """One clear line for the database problems an operator fixes: unreachable, or not migrated."""
    from django.db import OperationalError, ProgrammingError

    if not isinstance(exc, (OperationalError, ProgrammingError)):
        return None
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    if "no such table" in detail or ("relation" in detail and "does not exist" in detail):
        return f"the database is not set up ({detail}); run `cobrador manage migrate` or `cobrador up`"
    return f"cannot use the database: {detail}"


if __name__ == "__main__":
    sys.exit(main())
