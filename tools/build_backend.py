"""setuptools' build backend, behind a Python version check.

pip resolves the dependencies before it compares `requires-python`, so on Python 3.11 the first error a
new user saw was "No matching distribution found for django==6.1.*". The backend runs on the interpreter
that will run cobrador, so refusing here makes the real cause the first thing printed.
"""

import sys

if sys.version_info < (3, 12):  # noqa: UP036 - runs on whatever interpreter pip was started with
    sys.exit(
        f"cobrador needs Python 3.12 or newer; this is Python {sys.version.split()[0]} ({sys.executable}).\n"
        "Install Python 3.12+ (with pyenv: `pyenv install 3.13`, then run the command again in this folder;\n"
        "its .python-version selects it) and create the virtual environment with it."
    )

from setuptools.build_meta import *  # noqa: E402,F403  (the whole PEP 517/660 interface, unchanged)
