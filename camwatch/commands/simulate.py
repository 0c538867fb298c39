"""`camwatch simulate`: serve a simulated campus (模擬校園), generate one, inject faults.

camwatch simulate --inventory inventory/example-campus.yaml --control 127.0.0.1:18999
camwatch simulate --cameras 24 --recorders 2 --write-inventory c.yaml --serve
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
    from inventory.models import Inventory
    from simulator.model import FaultKind

DEFAULT_CONTROL = "127.0.0.1:18999"


def _ensure_demo_env(inventory: Inventory) -> list[str]:
    """Set random values for the CAMWATCH_DEMO_* variables the inventory refers to and
    nobody set (nothing else can log in to such a campus); return the names set."""
    from simulator.campus import DEMO_ENV_VARS

    used = _env_refs(inventory)
    set_now = []
    for name in DEMO_ENV_VARS:
        if name in used and not os.environ.get(name):
            os.environ[name] = secrets.token_urlsafe(12)
            set_now.append(name)
    return set_now


def _env_refs(inventory: Inventory) -> set[str]:
    refs: list[str | None] = []
    for cam in inventory.cameras.values():
        if cam.credentials is not None:
            refs.append(cam.credentials.password)
    for rec in inventory.recorders.values():
        if rec.credentials is not None:
            refs.append(rec.credentials.password)
        if rec.snmp is not None:
            refs += [rec.snmp.community, rec.snmp.auth_key, rec.snmp.priv_key]
    return {r[2:-1] for r in refs if r and r.startswith("${")}


def _campus_credentials(inventory_path: Path) -> tuple[dict[str, str], Path | None,
                                                        dict[str, str]]:
    """How a generated campus written to `inventory_path` names its credentials:
    ${CAMWATCH_DEMO_*} references when all those variables are set, else secret:KEY
    references to a secrets file beside the inventory (values kept from an existing one,
    or taken from a variable that is set, or random). Returns (generate_campus keyword
    arguments, secrets file or None, its KEY: value pairs)."""
    from camwatch.secrets import SecretError, read_secrets_file, secrets_file_beside
    from simulator.campus import CAMPUS_SECRETS

    if all(os.environ.get(env) for env, _key in CAMPUS_SECRETS.values()):
        return {}, None, {}
    path = secrets_file_beside(inventory_path)
    try:
        old = read_secrets_file(path)
    except SecretError as exc:
        _fail(f"{exc} (or delete it: a new one is written)")
    refs: dict[str, str] = {}
    values: dict[str, str] = {}
    for param, (env, key) in CAMPUS_SECRETS.items():
        values[key] = old.get(key) or os.environ.get(env) or secrets.token_urlsafe(12)
        refs[param] = f"secret:{key}"
    return refs, path, values


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
    help="Secrets file for secret:KEY references (mode 0600); default: "
    "INVENTORY.secrets.yaml beside the inventory when there is one.",
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
@click.option(
    "--port-offset",
    default=0,
    type=int,
    help="Add N to every device port (18080, 18554, 18161 for a generated campus; the "
    "written inventory says so). With --inventory the devices listen N above its ports.",
)
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
    """Serve a simulated campus that speaks ONVIF, ISAPI, Dahua CGI, SNMP, RTSP and
    snapshots, each device on its own loopback address, with fault injection (故障模擬).

    \b
    Try camwatch on it (each command in a terminal of its own; nothing else to set):
      camwatch simulate --cameras 24 --recorders 2 --write-inventory c.yaml --serve \\
          --control 127.0.0.1:18999
      camwatch check --inventory c.yaml
      camwatch run --inventory c.yaml           # http://127.0.0.1:9745/
      camwatch simulate fault cam-0003 blurred --control 127.0.0.1:18999
      camwatch simulate clear cam-0003 --control 127.0.0.1:18999

    \b
    --write-inventory c.yaml also writes c.secrets.yaml (mode 0600): the passwords the
    simulated devices accept, as secret:KEY references in c.yaml. `camwatch check` and
    `camwatch run` read it from beside c.yaml (or set CAMWATCH_SECRETS_FILE). With all of
    CAMWATCH_DEMO_NVR_PASSWORD, _CAM_PASSWORD and _SNMP_COMMUNITY set, c.yaml refers to
    those variables instead and no secrets file is written.

    \b
    Later: camwatch simulate --inventory c.yaml serves the same campus again.
    --port-offset N moves every port (18080, 18554, 18161) N up, in c.yaml too;
    --base 127.60 puts the devices on 127.60.x.y (run two campuses side by side).
    --scene-time 02:10 lights every scene for night (IR), 12:40 for day;
    --scene-speed 1440 runs a whole simulated day per minute.

    \b
    Fault kinds: offline, slow, auth, malformed, reboot, clock-drift, recording-stopped,
    recording-gap, disk-failed, disk-full, retention-short, retention-long, blurred,
    covered, dark, overexposed, frozen, moved, signal-loss.
    """
    if ctx.invoked_subcommand is not None:
        return
    from simulator.campus import (
        CAM_PASSWORD_REF,
        NVR_PASSWORD_REF,
        SNMP_COMMUNITY_REF,
        generate_campus,
        to_inventory,
    )
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
        refs: dict[str, str] = {}
        written_secrets: Path | None = None
        values: dict[str, str] = {}
        if write_inventory is not None:
            refs, written_secrets, values = _campus_credentials(write_inventory)
        ports = {"http_port": 18080 + port_offset, "rtsp_port": 18554 + port_offset,
                 "snmp_port": 18161 + port_offset}
        if not all(1024 <= p <= 65535 for p in ports.values()):
            _fail(f"--port-offset {port_offset}: the ports {sorted(ports.values())} must be "
                  "within 1024..65535")
        try:
            f = generate_campus(
                cameras or 0, recorders or 1, base=base, http_port=ports["http_port"],
                rtsp_port=ports["rtsp_port"], snmp_port=ports["snmp_port"],
                nvr_password=refs.get("nvr_password", NVR_PASSWORD_REF),
                cam_password=refs.get("cam_password", CAM_PASSWORD_REF),
                snmp_community=refs.get("snmp_community", SNMP_COMMUNITY_REF),
            )
        except ValueError as exc:
            _fail(str(exc))
            return
        port_offset = 0  # the generated inventory itself has the moved ports
        if write_inventory is not None:
            _write_campus(f, write_inventory, written_secrets, values, base, ports)
            if written_secrets is not None:
                secrets_file = written_secrets
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
        if secrets_file is None:  # as camwatch check/run: the one beside the inventory
            from camwatch.secrets import find_secrets_beside

            beside = find_secrets_beside(list(inventory_paths))
            if len(beside) > 1:
                _fail(f"several secrets files beside the inventory "
                      f"({', '.join(map(str, beside))}): give --secrets-file")
            secrets_file = beside[0] if beside else None
        if port_offset:
            click.echo(f"note: the devices listen {port_offset} ports above those in the "
                       "inventory; camwatch needs an inventory saying so (generate one with "
                       "--cameras N --recorders M --port-offset N --write-inventory PATH)")
    else:
        click.echo(ctx.get_help())
        _fail("give --inventory PATH, or --cameras N --recorders M")
        return
    for name in _ensure_demo_env(inventory):
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


def _write_campus(f: object, path: Path, secrets_path: Path | None, values: dict[str, str],
                  base: str, ports: dict[str, int]) -> None:
    from camwatch.secrets import write_secrets_file
    from inventory.models import InventoryFile
    from simulator.campus import write_inventory

    assert isinstance(f, InventoryFile)
    if secrets_path is not None:  # first: the inventory must never name missing secrets
        write_secrets_file(secrets_path, values)
    write_inventory(f, str(path))
    click.echo(
        f"wrote {path}: {len(f.recorders)} recorders, {len(f.cameras)} cameras on {base}.x.y, "
        f"HTTP/ONVIF port {ports['http_port']}, RTSP {ports['rtsp_port']}, "
        f"SNMP {ports['snmp_port']}"
    )
    if secrets_path is None:
        click.echo("credentials: the ${CAMWATCH_DEMO_*} variables you set")
        return
    click.echo(f"wrote {secrets_path} (mode 0600): the credentials the simulated devices "
               f"accept, as secret:KEY in {path.name}")
    click.echo(f"CAMWATCH_SECRETS_FILE={secrets_path.resolve()}")
    click.echo(f"  camwatch check --inventory {path} and camwatch run --inventory {path} read "
               f"it from beside {path.name} by themselves")
    configured = os.environ.get("CAMWATCH_SECRETS_FILE")
    if configured and Path(configured).resolve() != secrets_path.resolve():
        click.echo(f"warning: CAMWATCH_SECRETS_FILE is set to {configured}: camwatch reads "
                   f"that file, not {secrets_path}; unset it or point it here", err=True)


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
