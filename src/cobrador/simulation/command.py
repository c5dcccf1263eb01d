"""`cobrador simulate`: checks the options, points a fresh process at the simulation's own directory and
database, migrates it, runs the simulation with a progress bar and prints the report.

Imported by `cobrador.cli` before Django is set up: the simulation's environment must be in place
before settings are read, so what needs Django is imported once it is set up (see `simulate`).
"""

import time
from datetime import timedelta

from cobrador.core.commandline import CommandFailed, check_encryption_key, migrate, parse_at, setup_django
from cobrador.simulation import environment


def _between(option: str, value: int, most: int) -> None:
    if not 1 <= value <= most:
        raise CommandFailed(f"{option} must be between 1 and {most}")


def simulate(args) -> int:
    # "took" is the whole wall time: from when the command line started (the CLI sets args.started),
    # start-up and migrations included.
    started = getattr(args, "started", None) or time.monotonic()
    _between("--days", args.days, 3650)
    _between("--accounts", args.accounts, 100_000)
    _between("--resolution", args.resolution, 24 * 60)
    start = parse_at(args.start, "--start") if args.start else None
    # Deferred: django.apps reads no settings, but this module is imported before the environment is set.
    from django.apps import apps

    if apps.ready:  # called in a process that is already set up (tests): its database and data directory
        if args.database or args.dir:
            raise CommandFailed("--database and --dir only work in a fresh process (they are read at start-up)")
    else:
        environment.prepare(directory=args.dir, database=args.database)
    setup_django()
    # Deferred until Django is set up on the simulation's database (start-up order).
    from cobrador.simulation import run_simulation
    from cobrador.simulation.engine import Options, SimulationRefused
    from cobrador.simulation.progress import progress_bar
    from cobrador.simulation.report import render_json, render_text

    options = Options(days=args.days, accounts=args.accounts, seed=args.seed,
                      resolution=timedelta(minutes=args.resolution), follow=args.follow)
    if start is not None:
        options.start = start
    talk = not args.json and not args.quiet
    if talk:
        print(f"simulating {args.days} days of {args.accounts} accounts (seed {args.seed})...", flush=True)
    with progress_bar(start=options.start, days=options.days, show=talk) as progress:
        progress.stage("migrating the database")
        migrate()
        check_encryption_key()
        progress.stage("setting up the demo organization")
        try:
            simulation, summary = run_simulation(options, progress=progress)
        except SimulationRefused as exc:
            raise CommandFailed(str(exc)) from None
    simulation.elapsed = summary["elapsed_seconds"] = round(time.monotonic() - started, 1)
    # Under "simulation", with the other facts of this one run (its database, its directory).
    summary["simulation"]["dashboard"] = _dashboard_member(summary["simulation"])
    print(render_json(simulation, summary) if args.json else render_text(simulation, summary, quiet=args.quiet))
    if not args.json:
        print(_dashboard_hint(summary["simulation"]["dashboard"]))
    return 1 if summary["errors"] else 0


DASHBOARD_EMAIL = "demo@example.com"


def _dashboard_member(run: dict) -> dict:
    """A member of the demo organization, to open its dashboard (/dashboard/) on the simulation's database."""
    # Deferred with Django's set-up, as above.
    import os

    from django.conf import settings
    from django.db import transaction

    from cobrador.organizations.models import Organization
    from cobrador.organizations.services import add_member

    organization = Organization.objects.get(public_id=run["organization"])
    with transaction.atomic():
        if organization.memberships.filter(user__username=DASHBOARD_EMAIL).exists():
            password = None
        else:
            _, password = add_member(organization=organization, email=DASHBOARD_EMAIL)
    return {"email": DASHBOARD_EMAIL, "password": password,
            "url": f"{settings.PUBLIC_URL}/dashboard/{organization.public_id}/?from={run['start'][:10]}"
                   f"&to={run['end'][:10]}&interval=month",
            "environment": {"COBRADOR_DATA_DIR": run["data_dir"],
                            "COBRADOR_DATABASE_URL": os.environ.get("COBRADOR_DATABASE_URL", "")}}


def _dashboard_hint(dashboard: dict) -> str:
    environment = " ".join(f"{k}={v}" for k, v in dashboard["environment"].items() if v)
    password = (f"password {dashboard['password']}" if dashboard["password"]
                else "the password it was given before")
    return (f"Dashboard: {environment} cobrador web, then open {dashboard['url']}\n"
            f"  sign in as {dashboard['email']} ({password}); more members: "
            f"`cobrador user create --org ORG --email E` with the same environment")
