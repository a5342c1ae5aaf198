"""The ``medcam`` command line.

Subcommands are registered in :data:`COMMANDS` as ``"module:attribute"`` and
imported only when invoked, so ``medcam list`` starts fast. Every error medcam
raises on purpose is printed as one line (``error: ...``) with exit status 2;
``medcam --debug ...`` shows the traceback instead.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import click

__all__ = ["main", "cli", "COMMANDS"]

#: name -> "module:click command"; later subcommands add one line here.
COMMANDS: dict[str, str] = {
    "list": "medcam.cli.registry_commands:list_command",
    "info": "medcam.cli.registry_commands:info_command",
    "build": "medcam.cli.registry_commands:build_command",
    "train": "medcam.cli.train_commands:train_command",
    "eval": "medcam.cli.train_commands:eval_command",
    "demo": "medcam.cli.train_commands:demo_command",
    "explain": "medcam.cli.explain_commands:explain_command",
    "app": "medcam.cli.explain_commands:app_command",
    "bench": "medcam.cli.bench_commands:bench_command",
    "segment": "medcam.cli.segment_commands:segment_command",
}

_DEBUG_ENV = "MEDCAM_DEBUG"


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS) | set(super().list_commands(ctx)))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            from medcam.registry import did_you_mean

            raise click.UsageError(f"no such command '{name}'{did_you_mean(name, self.list_commands(ctx))}", ctx)
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.version_option(package_name="medcam", prog_name="medcam")
def cli(debug: bool) -> None:
    """medcam: localization-aware medical image classification.

    Build models by name or spec, train them, explain their predictions and
    measure how well the explanations match the lesion.
    """
    if debug:
        os.environ[_DEBUG_ENV] = "1"


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(text.split("\n")[:1]) if len(text) > 2000 else text.replace("\n", " ")


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 2 with one clear line on a known error."""
    from medcam.errors import MedcamError

    args = list(sys.argv[1:] if argv is None else argv)
    debug = False
    for arg in args:  # only options before the subcommand belong to the group
        if not arg.startswith("-"):
            break
        debug = debug or arg == "--debug"
    try:
        # in non-standalone mode click returns ctx.exit(n) codes instead of exiting
        code = cli.main(args=args, prog_name="medcam", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code != 0:
            sys.exit(code)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except (MedcamError, FileNotFoundError, IsADirectoryError, PermissionError) as err:
        if debug or os.environ.get(_DEBUG_ENV):
            raise
        click.echo(f"error: {_one_line(err)}", err=True)
        sys.exit(2)
