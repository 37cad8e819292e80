"""The ``fengqiao`` command: the operator's entry point. It parses options and runs jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from fengqiao.errors import FengqiaoError
from fengqiao.log import configure_logging
from fengqiao.settings import Settings
from pipelines.jobs import JobResult, ingest_job, simulate_job
from pipelines.simulate.world import SimulationConfig

app = typer.Typer(
    help="Fengqiao: social-stability risk assessment and early warning for villages and projects.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
DEFAULTS = SimulationConfig()


def _run(job) -> JobResult:
    """Run a job; a project error becomes a one-line message and exit code 2, not a trace."""
    configure_logging()
    try:
        result = job()
    except FengqiaoError as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from err
    typer.echo(result.render())
    return result


@app.command()
def simulate(
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same bytes.")] = DEFAULTS.seed,
    scale: Annotated[float, typer.Option(help="Multiplies towns, villages, people and events (10: ~20k villages).")] = 1.0,
    years: Annotated[float, typer.Option(help="Years of daily history.")] = DEFAULTS.years,
    start: Annotated[str, typer.Option(help="First day of the history (YYYY-MM-DD).")] = DEFAULTS.start,
    dirty: Annotated[bool, typer.Option(help="Inject realistic bad data and list it in dirty_injected.csv.")] = False,
    dirty_rate: Annotated[float, typer.Option(help="Share of rows given each kind of defect.")] = 0.01,
    out: Annotated[Optional[Path], typer.Option(help="Export folder (default <data_root>/raw).")] = None,
) -> None:
    """Simulate a Hanzhong-like city and write it as a platform export (CSV + Parquet)."""
    config = SimulationConfig(seed=seed, scale=scale, years=years, start=start)
    _run(lambda: simulate_job(config, out or Settings().raw_dir, dirty=dirty, dirty_rate=dirty_rate))


@app.command()
def ingest(
    source: Annotated[Optional[str], typer.Argument(help="Export folder, Excel workbook or SQLAlchemy URL (default <data_root>/raw).")] = None,
    mapping: Annotated[Optional[Path], typer.Option(help="YAML column mapping for another platform's export.")] = None,
    create_key: Annotated[bool, typer.Option(help="Create a random pseudonymisation key under <data_root>/secrets if none is set.")] = False,
) -> None:
    """Validate an export into the warehouse; rejected rows are kept with their reason."""
    settings = Settings()
    _run(lambda: ingest_job(settings, source or str(settings.raw_dir), mapping, create_key))


@app.command()
def demo() -> None:
    """The main job on the embedded defaults: simulate → ingest (later: features → train → serve)."""
    settings = Settings()
    results = [
        _run(lambda: simulate_job(DEFAULTS, settings.raw_dir)),
        _run(lambda: ingest_job(settings, str(settings.raw_dir), create_key=True)),
    ]
    total = sum(r.seconds for r in results)
    typer.echo(f"\ndemo finished in {total:.0f} s. Look at:\n"
               f"  {settings.raw_dir}/world.json        the simulated world and its realised rates\n"
               f"  {settings.warehouse_dir}/            validated tables, rejects/ and ingest_report.json")


if __name__ == "__main__":
    app()
