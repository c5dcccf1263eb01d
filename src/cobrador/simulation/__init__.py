"""`cobrador simulate`: a demo organization, its customers and every registered job, run through
simulated days on a database of its own, told as a timeline and a summary.

    from cobrador.simulation import run_simulation
    from cobrador.simulation.engine import Options
    simulation, summary = run_simulation(Options(days=40, accounts=20, seed=1))

Modules: scenario (the catalog and the customers' seeded behaviour), engine (walking time: jobs,
customers' actions, due tasks and outbox delivery), receiver (the demo webhook endpoint, verifying
signatures), progress (the command's progress bar), timeline (what happened, per day and per featured
account), report (summary, text, JSON), environment (the simulation's own data directory and database,
set before Django starts, so this package imports nothing of Django here).
"""


def run_simulation(options, progress=None):
    """Run the simulation described by `options` (an engine.Options) on the configured database;
    returns (the Simulation, its summary dict). `progress` (a progress.SimulationProgress) is told
    each simulated moment reached."""
    # Deferred for start-up order: the package is imported (for environment) before Django is set up.
    from cobrador.simulation.engine import Simulation
    from cobrador.simulation.report import summarize

    simulation = Simulation(options, progress=progress).run()
    return simulation, summarize(simulation)
