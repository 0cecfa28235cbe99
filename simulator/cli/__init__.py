"""`trainsim` command line (docs/design.md section 4): data on stdout, messages on stderr.

Every user error (`TrainsimError`) becomes one line on stderr and exit code 1; usage errors
are typer's (exit code 2). One module per group of commands: `run` (estimate, search, validate,
project), `plan`, `carbon`, `claims`, `dashboard`, `catalog`; `calibrate` comes from the calibrate
package (calibrate/cli.py), which owns its commands.
"""

from __future__ import annotations

from calibrate.cli import calibrate_app
from simulator.cli.carbon import carbon_cmd
from simulator.cli.catalog import catalog_app
from simulator.cli.claims import claims_cmd
from simulator.cli.common import app
from simulator.cli.dashboard import dashboard_cmd
from simulator.cli.plan import plan_cmd
from simulator.cli.run import estimate_cmd, project_cmd, search_cmd, validate_cmd

for name, command in (("estimate", estimate_cmd), ("search", search_cmd), ("plan", plan_cmd),
                      ("validate", validate_cmd), ("carbon", carbon_cmd), ("project", project_cmd),
                      ("claims", claims_cmd), ("dashboard", dashboard_cmd)):
    app.command(name)(command)
app.add_typer(catalog_app, name="catalog")
app.add_typer(calibrate_app, name="calibrate")

__all__ = ["app", "main"]


def main() -> None:
    app()


if __name__ == "__main__":
    main()
