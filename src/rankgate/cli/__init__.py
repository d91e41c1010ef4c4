"""The ``rankgate`` command. Commands live in their own modules and hold no business logic."""

from __future__ import annotations

from typing import Annotated

import typer

from rankgate import __version__
from rankgate.cli.bench import bench, bench_server
from rankgate.cli.calibrate import calibrate_command
from rankgate.cli.common import EXIT_HELP
from rankgate.cli.demo_commands import demo_app, health
from rankgate.cli.export import export
from rankgate.cli.finetune import finetune
from rankgate.cli.funnel_commands import eval_command, index, search, templates
from rankgate.cli.help import PanelCommand, PanelGroup
from rankgate.cli.model_commands import download, info
from rankgate.cli.ray_commands import score_batch
from rankgate.cli.rerank import rerank
from rankgate.cli.serve import serve

app = typer.Typer(
    name="rankgate",
    help="Cross-encoder reranking (BAAI/bge-reranker-v2-m3) for RAG. Every option is also a "
    "RANKGATE_* environment variable; explicit options win over the environment.",
    epilog=EXIT_HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    # Click's help layout, grouped by panel: it reads at 80 columns (rankgate.cli.help).
    cls=PanelGroup,
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rankgate {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Cross-encoder reranking for RAG."""


app.command(epilog=EXIT_HELP, cls=PanelCommand)(rerank)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(info)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(download)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(serve)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(export)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(index)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(search)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(templates)
app.command("eval", epilog=EXIT_HELP, cls=PanelCommand)(eval_command)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(finetune)
app.command("calibrate", epilog=EXIT_HELP, cls=PanelCommand)(calibrate_command)
app.command("score-batch", epilog=EXIT_HELP, cls=PanelCommand)(score_batch)
app.command(epilog=EXIT_HELP, cls=PanelCommand)(bench)
app.command("bench-server", epilog=EXIT_HELP, cls=PanelCommand)(bench_server)
app.add_typer(demo_app, name="demo")
app.command(epilog=EXIT_HELP, cls=PanelCommand)(health)


def main() -> None:
    app()
