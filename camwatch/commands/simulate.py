"""`camwatch simulate`: serve a simulated campus (模擬校園), generate one, inject faults.

camwatch simulate --inventory inventory/example-campus.yaml --control 127.0.0.1:18999
camwatch simulate --cameras 2000 --recorders 100 --write-inventory /tmp/big.yaml
camwatch simulate --inventory /tmp/big.yaml --fault cam-0001=blurred:8
camwatch simulate fault cam-0001 covered --control 127.0.0.1:18999
camwatch simulate clear cam-0001 --control 127.0.0.1:18999
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from simulator.model import FaultKind

DEFAULT_CONTROL = "127.0.0.1:18999"


def _ensure_demo_env() -> list[str]:
    """Set random values for unset CAMWATCH_DEMO_* variables; return the names set."""
    from simulator.campus import DEMO_ENV_VARS

    set_now = []
    for name in DEMO_ENV_VARS:
        if not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(12)
            set_now.append(name)
    return set_now


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


@click.group(invoke_without_command=True)
@click.option(
    "--inventory",
    "inventory_paths",
    multiple=True,
    type=click.Path(path_type=Path),
    help="Inventory file(s) or folder(s) to serve (清冊).",
)
@click.option(
    "--secrets-file",
    type=click.Path(path_type=Path),
    default=None,
    envvar="CAMWATCH_SECRETS_FILE",
    help="Secrets file for secret:KEY references (mode 0600).",
)
@click.option(
    "--fault",
    "faults",
    multiple=True,
    metavar="DEVICE=KIND[:SEVERITY]",
    help="Inject a fault at start (repeatable), e.g. cam-0001=blurred:8.",
)
@click.option(
    "--control",
    default=None,
    metavar="HOST:PORT",
    help=f"Serve the fault control API on loopback (e.g. {DEFAULT_CONTROL}).",
)
@click.option("--port-offset", default=0, type=int, help="Add N to every device port.")
@click.option(
    "--video",
    "videos",
    multiple=True,
    metavar="CAMERA=PATH",
    help="Let a camera play a video file instead of its scene (repeatable).",
)
@click.option("--snmp/--no-snmp", default=True, show_default=True, help="Serve SNMP agents.")
@click.option(
    "--rtsp",
    default=16,
    show_default=True,
    type=int,
    help="Serve RTSP (GStreamer) for up to N devices; 0: none.",
)
@click.option("--cameras", type=int, default=None, help="Generate a campus with N cameras.")
@click.option("--recorders", type=int, default=None, help="… and M recorders (錄影主機).")
@click.option(
    "--base",
    default="127.50",
    show_default=True,
    help="First two octets of the generated campus' loopback addresses.",
)
@click.option(
    "--write-inventory",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the generated campus inventory to PATH (and exit unless --serve).",
)
@click.option("--serve", is_flag=True, help="With --write-inventory: also serve it.")
@click.option(
    "--frame-size",
    default="640x360",
    show_default=True,
    help="Snapshot resolution WxH (1920x1080 for benchmarks).",
)
@click.option(
    "--scene-time",
    default=None,
    metavar="HH:MM",
    help="Light every scene for this local time of day (06:00-18:00 day, else night/IR); "
    "default: each device's local time.",
)
@click.option(
    "--scene-speed",
    default=None,
    type=click.FloatRange(min=0),
    metavar="N",
    help="Run the scene time N times faster (from --scene-time, or from the devices' "
    "local time): 1440 = a simulated day per minute.",
)
@click.option(
    "--ready-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Touch this file once every device is listening (for scripts and tests).",
)
@click.pass_context
def group(
    ctx: click.Context,
    inventory_paths: tuple[Path, ...],
    secrets_file: Path | None,
    faults: tuple[str, ...],
    control: str | None,
    port_offset: int,
    videos: tuple[str, ...],
    snmp: bool,
    rtsp: int,
    cameras: int | None,
    recorders: int | None,
    base: str,
    write_inventory: Path | None,
    serve: bool,
    frame_size: str,
    scene_time: str | None,
    scene_speed: float | None,
    ready_file: Path | None,
) -> None:
    """Serve a simulated campus that speaks ONVIF, ISAPI, Dahua CGI and snapshots,
    each device on its own loopback address, with fault injection (故障模擬).

    Fault kinds: offline, slow, auth, malformed, reboot, clock-drift, recording-stopped,
    recording-gap, disk-failed, disk-full, retention-short, retention-long, blurred,
    covered, dark, overexposed, frozen, moved, signal-loss.
    """
    if ctx.invoked_subcommand is not None:
        return
    from inventory.models import Inventory
    from simulator.campus import generate_campus, to_inventory
    from simulator.campus import write_inventory as write_inv
    from simulator.model import parse_fault

    try:
        width, height = (int(v) for v in frame_size.lower().split("x"))
    except ValueError:
        _fail(f"--frame-size {frame_size!r}: expected WxH such as 640x360")
        return
    if scene_time is not None:
        from simulator.scenes import parse_scene_time

        try:
            parse_scene_time(scene_time)
        except ValueError as exc:
            _fail(f"--scene-time {exc}")
    parsed = []
    for text in faults:
        try:
            parsed.append(parse_fault(text))
        except ValueError as exc:
            _fail(f"--fault {exc}")
    video_map: dict[str, str] = {}
    for text in videos:
        cam, sep, path = text.partition("=")
        if not sep or not Path(path).is_file():
            _fail(f"--video {text!r}: expected CAMERA=PATH to an existing video file")
        video_map[cam.strip()] = path
    inventory: Inventory
    if cameras is not None or recorders is not None:
        try:
            f = generate_campus(cameras or 0, recorders or 1, base=base)
        except ValueError as exc:
            _fail(str(exc))
            return
        if write_inventory is not None:
            write_inv(f, str(write_inventory))
            click.echo(
                f"wrote {write_inventory}: {len(f.recorders)} recorders, {len(f.cameras)} "
                f"cameras on {base}.x.y"
            )
            if not serve:
                return
        inventory = to_inventory(f)
    elif inventory_paths:
        from inventory.errors import InventoryError
        from inventory.loader import load_inventory

        try:
            inventory = load_inventory(list(inventory_paths))
        except InventoryError as exc:
            _fail(str(exc))
            return
    else:
        click.echo(ctx.get_help())
        _fail("give --inventory PATH, or --cameras N --recorders M")
        return
    for name in _ensure_demo_env():
        click.echo(f"{name} was not set: using a random value for this run (not shown)")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            _serve(
                inventory,
                secrets_file,
                parsed,
                control,
                port_offset,
                (width, height),
                ready_file,
                snmp,
                rtsp,
                video_map,
                scene_time,
                scene_speed,
            )
        )


async def _serve(
    inventory: object,
    secrets_file: Path | None,
    faults: list[tuple[str, FaultKind, float]],
    control: str | None,
    port_offset: int,
    frame_size: tuple[int, int],
    ready_file: Path | None,
    snmp: bool = True,
    rtsp: int = 0,
    videos: dict[str, str] | None = None,
    scene_time: str | None = None,
    scene_speed: float | None = None,
) -> None:
    from camwatch.secrets import SecretError, SecretStore
    from inventory.models import Inventory
    from simulator.testing import SimulatedCampus

    assert isinstance(inventory, Inventory)
    t0 = time.monotonic()
    try:
        sim = SimulatedCampus(
            inventory,
            SecretStore(secrets_file),
            port_offset=port_offset,
            control=control,
            frame_size=frame_size,
            snmp=snmp,
            rtsp=rtsp,
            videos=videos,
            scene_time=scene_time,
            scene_speed=scene_speed,
        )
    except SecretError as exc:
        _fail(f"credentials: {exc}")
        return
    except KeyError as exc:
        _fail(f"--video: {exc.args[0]}")
        return
    for device, kind, severity in faults:
        if device not in sim.devices:
            _fail(f"--fault: no device {device!r} in the inventory")
        sim.world.fault(device, kind, severity)
    try:
        await sim.start()
    except ValueError as exc:
        _fail(str(exc))
        return
    except OSError as exc:
        _fail(
            f"cannot listen: {exc.strerror or exc} (another simulator running? try --port-offset)"
        )
        return
    served = sim.world.served()
    recs = sum(1 for d in served if d.is_recorder)
    hosts = sorted({d.host for d in served if d.host})
    ports = sorted({d.http_port for d in served})
    span = f"{hosts[0]} … {hosts[-1]}" if len(hosts) > 1 else (hosts[0] if hosts else "-")
    click.echo(
        f"serving {len(served)} devices ({recs} recorders, {len(served) - recs} IP cameras) "
        f"on {len(hosts)} addresses {span}, HTTP/ONVIF port {','.join(map(str, ports))}, "
        f"in {time.monotonic() - t0:.1f} s"
    )
    if sim.snmp_agents is not None:
        n = sum(1 for d in served if d.is_recorder and d.snmp_community)
        click.echo(f"SNMP agents for {n} recorders")
    if sim.rtsp_cameras is not None:
        click.echo(f"RTSP streams for up to {rtsp} devices (GStreamer)")
    elif sim.rtsp_unavailable:
        click.echo(f"RTSP not served: {sim.rtsp_unavailable}")
    if sim.scene_clock is not None:
        click.echo(f"scenes lit for {sim.scene_clock.describe()}")
    if control:
        click.echo(f"fault control API: http://{control}/faults")
    if faults:
        click.echo(f"faults: {sim.faults()}")
    if ready_file is not None:
        await asyncio.to_thread(ready_file.write_text, "ready\n", encoding="utf-8")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        click.echo("stopping simulator")
        await sim.stop()


@group.command("fault")
@click.argument("device")
@click.argument("kind")
@click.argument("severity", required=False, type=float)
@click.option("--control", default=DEFAULT_CONTROL, show_default=True, metavar="URL")
def fault_command(device: str, kind: str, severity: float | None, control: str) -> None:
    """Inject a fault into a running simulator, e.g. `fault cam-0001 blurred 8`."""
    from simulator.control import ControlClient, ControlError
    from simulator.model import fault_kind

    try:
        fault_kind(kind)
        result = ControlClient(control).fault(device, kind, severity)
    except (ValueError, ControlError) as exc:
        _fail(str(exc))
        return
    click.echo(f"{device}: {result.get('faults')}")


@group.command("clear")
@click.argument("device", required=False)
@click.option("--control", default=DEFAULT_CONTROL, show_default=True, metavar="URL")
def clear_command(device: str | None, control: str) -> None:
    """Clear the faults of DEVICE (of every device when none is named)."""
    from simulator.control import ControlClient, ControlError

    try:
        ControlClient(control).clear(device)
    except ControlError as exc:
        _fail(str(exc))
        return
    click.echo(f"{device or 'all devices'}: faults cleared")


@group.command("faults")
@click.option("--control", default=DEFAULT_CONTROL, show_default=True, metavar="URL")
def faults_command(control: str) -> None:
    """List the faults injected into a running simulator."""
    from simulator.control import ControlClient, ControlError

    try:
        faults = ControlClient(control).faults()
    except ControlError as exc:
        _fail(str(exc))
        return
    if not faults:
        click.echo("no faults")
    for device, kinds in sorted(faults.items()):
        click.echo(f"{device}: " + ", ".join(f"{k}={v:g}" for k, v in kinds.items()))
