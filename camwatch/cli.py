"""The `camwatch` command. Each subcommand lives in camwatch/commands/<name>.py and is
imported only when used, so `camwatch --help` stays fast (OpenCV alone takes ~0.3 s).

Exit codes: 0 ok, 1 a finding or bad input, 2 usage.
"""

from __future__ import annotations

import importlib

import click

# name -> (module, attribute, one-line help shown by `camwatch --help`)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": ("camwatch.commands.run", "command", "Run the service: probes, /metrics, alerts, log."),
    "check": ("camwatch.commands.check", "command", "Probe devices once and print the answers."),
    "report": ("camwatch.commands.report", "command", "Write the monthly 附件四 sheet of a unit."),
    "inventory": ("camwatch.commands.inventory", "group", "Validate or export the inventory."),
    "clarity": ("camwatch.commands.clarity", "command", "Score image or video files offline."),
    "baseline": ("camwatch.commands.baseline", "group",
                 "Reset a camera's picture baseline after its lens is serviced."),
    "simulate": ("camwatch.commands.simulate", "group", "Serve a simulated campus."),
    "demo": ("camwatch.commands.demo", "command", "Run the simulated campus end to end."),
}

SECTIONS = [
    ("Service", ["run", "check", "report"]),
    ("Inventory and installers", ["inventory", "clarity", "baseline"]),
    ("Trying camwatch without cameras", ["simulate", "demo"]),
]


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module = importlib.import_module(spec[0])
        cmd: click.Command = getattr(module, spec[1])
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        for title, names in SECTIONS:
            rows = [(n, COMMANDS[n][2]) for n in names]
            with formatter.section(title):
                formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="camwatch")
def main() -> None:
    """camwatch keeps a school's CCTV recorders and cameras healthy.

    It answers the three questions of the maintenance log (附件四) for every recorder
    and camera — is the recorder running, is recording running, is the picture clear —
    exports them to Prometheus, sends repair alerts to Alertmanager, and writes the
    monthly sheet for the office head to sign.

    Start with `camwatch demo` (no cameras needed) or `camwatch inventory validate`.
    """
    from camwatch.clock import ClockError, from_env

    try:
        from_env()  # a CAMWATCH_CLOCK that is not an instant stops every command at once
    except ClockError as exc:
        raise click.UsageError(str(exc)) from None
