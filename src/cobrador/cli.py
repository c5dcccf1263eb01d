"""`cobrador`: the operator's command line. Every command has --help, clear errors and a non-zero
exit status on failure.

This module is the dispatcher: the parser, and the mapping of errors to messages and exit codes. Each
command's body lives beside what it drives, named in the parser as "module:function" and imported only
when that command runs (after Django is set up, unless the command sets up Django itself):
`serve` (up, web, worker), `organizations.commands` (org, key, user), `usage.commands` (usage rebuild),
`jobs.commands`, `gateways.commands` (sandbox) and `simulation.command`.
"""

import argparse
import os
import sys
import time
from importlib import import_module

from cobrador.core.commandline import CommandFailed, setup_django
from cobrador.core.keys import ConfigurationError  # imports no Django: safe before settings load

# Commands that set up Django themselves (the simulation first points the settings at its own database).
SETS_UP_DJANGO = {"cobrador.simulation.command:simulate"}


def cmd_manage(argv: list[str]) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cobrador.settings")
    from django.core.management import execute_from_command_line  # deferred: settings are chosen above

    execute_from_command_line(["cobrador manage", *argv])
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
    up.set_defaults(handler="cobrador.serve:up")

    web = sub.add_parser("web", help="run the web server (API, admin)")
    web.add_argument("--host", default="127.0.0.1")
    web.add_argument("--port", type=int, default=8000)
    web.add_argument("--workers", type=int, default=2)
    web.set_defaults(handler="cobrador.serve:web")

    worker = sub.add_parser("worker", help="run a worker: tasks, schedules and outbox delivery")
    worker.add_argument("--concurrency", type=int, default=4)
    worker.add_argument("--interval", type=float, default=0.5, help="idle poll interval in seconds")
    worker.add_argument("--drain", action="store_true", help="run until nothing is ready, then exit")
    worker.add_argument("--heartbeat-file", metavar="PATH",
                        help="touch PATH at every poll, for liveness probes (`cobrador manage ox_health "
                             "--heartbeat-file PATH`)")
    worker.set_defaults(handler="cobrador.serve:worker")

    org = sub.add_parser("org", help="organizations").add_subparsers(dest="org_command", required=True)
    org_create = org.add_parser("create", help="create an organization and print its id and a new API key")
    org_create.add_argument("name", metavar="NAME")
    org_create.add_argument("--mode", choices=["test", "live"], default="test")
    org_create.add_argument("--billing-email", default="")
    org_create.set_defaults(handler="cobrador.organizations.commands:org_create")

    key = sub.add_parser("key", help="API keys").add_subparsers(dest="key_command", required=True)
    key_create = key.add_parser("create", help="create an API key for an organization")
    key_create.add_argument("--org", required=True, metavar="ORG_ID")
    key_create.add_argument("--name", default="")
    key_create.set_defaults(handler="cobrador.organizations.commands:key_create")
    key_revoke = key.add_parser("revoke", help="revoke an API key")
    key_revoke.add_argument("key_id", metavar="KEY_ID")
    key_revoke.set_defaults(handler="cobrador.organizations.commands:key_revoke")

    user = sub.add_parser("user", help="dashboard users").add_subparsers(dest="user_command", required=True)
    user_create = user.add_parser("create", help="make a person a member of an organization (signs in at "
                                                 "/dashboard/); prints a new user's password once")
    user_create.add_argument("--org", required=True, metavar="ORG_ID")
    user_create.add_argument("--email", required=True)
    user_create.set_defaults(handler="cobrador.organizations.commands:user_create")

    usage = sub.add_parser("usage", help="analytics: the MRR ledger").add_subparsers(dest="usage_command",
                                                                                   required=True)
    usage_rebuild = usage.add_parser(
        "rebuild", help="rebuild an organization's MRR ledger from its subscriptions' history and redo its "
                        "snapshots; says what it cannot rebuild")
    usage_rebuild.add_argument("--org", required=True, metavar="ORG_ID")
    usage_rebuild.add_argument("--dry-run", action="store_true", help="compare with the ledger, change nothing")
    usage_rebuild.set_defaults(handler="cobrador.usage.commands:usage_rebuild")

    jobs = sub.add_parser("jobs", help="scheduled jobs").add_subparsers(dest="jobs_command", required=True)
    jobs_list = jobs.add_parser("list", help="the registered schedules, next fire time and last result")
    jobs_list.set_defaults(handler="cobrador.jobs.commands:jobs_list")
    jobs_run = jobs.add_parser("run", help="run one sweep now, synchronously")
    jobs_run.add_argument("name", metavar="NAME")
    jobs_run.add_argument("--at", help="ISO-8601 time to run as of (needs COBRADOR_TIME_TRAVEL=1)")
    jobs_run.set_defaults(handler="cobrador.jobs.commands:jobs_run")

    sandbox = sub.add_parser("sandbox", help="the built-in sandbox provider (test mode)").add_subparsers(
        dest="sandbox_command", required=True)
    sandbox_pay = sandbox.add_parser(
        "pay", help="pay a pending sandbox boleto or PIX and send its signed callback to COBRADOR_PUBLIC_URL")
    sandbox_pay.add_argument("payment_id", metavar="PAYMENT_ID")
    sandbox_pay.set_defaults(handler="cobrador.gateways.commands:sandbox_pay")

    simulate = sub.add_parser(
        "simulate", help="run a demo organization and every job through simulated days; print a timeline",
        description="Creates a demo organization with a realistic mix of customers (plans, trials, coupons, "
                    "commitments, cards that decline, boleto and PIX payers) in a database of its own, runs every "
                    "registered job tick by tick through the simulated days, the customers acting through the API "
                    "and paying at the sandbox by signed callbacks, and prints a timeline and a summary. The "
                    "database, keys and the mails sent (.eml files) stay in the simulation's directory.")
    simulate.add_argument("--days", type=int, default=45, help="simulated days (default 45)")
    simulate.add_argument("--accounts", type=int, default=100, help="billing accounts (default 100)")
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
    simulate.set_defaults(handler="cobrador.simulation.command:simulate")

    # `manage` is dispatched by main() before parsing; this entry lists it in --help.
    sub.add_parser("manage", help="Django's management commands (migrate, createsuperuser, ...)", add_help=False)
    _remember_parsers(parser)
    return parser


def _remember_parsers(parser: argparse.ArgumentParser) -> None:
    """Give each command's arguments its own parser, so an error can name the option it is about."""
    for action in parser._actions:  # noqa: SLF001 - argparse lists a parser's arguments nowhere public
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for subparser in action.choices.values():
                subparser.set_defaults(parser=subparser)
                _remember_parsers(subparser)


# --- dispatch and errors ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    started = time.monotonic()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["manage"]:
        # Everything after `manage` is Django's, options first included (`manage --help`), which
        # argparse's REMAINDER would refuse.
        try:
            return cmd_manage(argv[1:])
        except ConfigurationError as exc:  # the settings refused the environment (data dir, keys)
            return _fail(str(exc))
    args = build_parser().parse_args(argv)
    args.started = started  # when the command started (time.monotonic()): `simulate` reports it as "took"
    try:
        if args.handler not in SETS_UP_DJANGO:
            setup_django()
        module, function = args.handler.split(":")
        return getattr(import_module(module), function)(args) or 0
    except (CommandFailed, ConfigurationError) as exc:
        return _fail(str(exc))
    except Exception as exc:
        # Deferred: core.errors imports django-ninja, which reads Django's settings as it loads, and the
        # settings may be what failed (a malformed key, an unusable data directory).
        from cobrador.core.errors import ApiError

        if isinstance(exc, ApiError):  # a service refused the input: say which option, in the operator's words
            return _fail(_option_message(exc, args.parser))
        problem = _database_problem(exc)
        if problem is None:
            raise
        return _fail(problem)


def _fail(message: str) -> int:
    print(f"cobrador: error: {message}", file=sys.stderr)
    return 2


def _option_message(exc, parser: argparse.ArgumentParser) -> str:
    """A service's "field: problem" as "--option problem" (or "NAME problem") of the command that was run."""
    actions = {action.dest: action for action in parser._actions}  # noqa: SLF001
    action = actions.get(exc.field)
    if action is None:
        return exc.message
    option = action.option_strings[-1] if action.option_strings else (action.metavar or action.dest.upper())
    return f"{option} {exc.message.removeprefix(f'{exc.field}: ')}"


def _database_problem(exc: Exception) -> str | None:
    """One clear line for the database problems an operator fixes: unreachable, or not migrated."""
    from django.db import OperationalError, ProgrammingError  # deferred: Django may not be set up

    if not isinstance(exc, (OperationalError, ProgrammingError)):
        return None
    lines = str(exc).strip().splitlines()
    detail = lines[0] if lines else type(exc).__name__
    if "no such table" in detail or ("relation" in detail and "does not exist" in detail):
        return f"the database is not set up ({detail}); run `cobrador manage migrate` or `cobrador up`"
    return f"cannot use the database: {detail}"


if __name__ == "__main__":
    sys.exit(main())
