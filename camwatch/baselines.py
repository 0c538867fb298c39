"""The service's side of picture baselines, for `camwatch baseline`:

- `POST /admin/baselines/{camera}/reset` forgets a camera's baselines after its lens was
  cleaned, refocused or re-aimed (`baseline_resetter()`);
- `GET /admin/baselines/{camera}` says what is held: the frame size seen, each mode
  learned or not, and which is an installer's reference (`baseline_describer()`);
- `POST /admin/baselines/{camera}/reference` makes a known-good view the baseline of its
  mode (`baseline_setter()`). The command scores the photo on the installer's machine at
  the camera's frame size and sends figures and the 32x18 thumbnail only, never the
  picture itself; they are kept like learned baselines.

Each camera is judged against its own baseline (probes/baseline.py), kept per mode
(day / night) in the probe memory. Everything here runs on the event loop: the picture
probe reads and writes a camera's baseline without awaiting in between, so nothing here
interleaves with that update.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from probes.context import ProbeContext

BaselineReset = Callable[[str], Awaitable[dict[str, Any]]]
BaselineDescribe = Callable[[str], Awaitable[dict[str, Any]]]
BaselineSet = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class BaselineRefused(ValueError):
    """A reference that cannot be used; the text says why (shown to the installer)."""


def describe_baseline(stored: dict[str, Any] | None) -> dict[str, Any]:
    """What a stored baseline holds, per mode: learned or not, and from how many
    samples; plus how many samples a mode needs to be learned."""
    from probes.baseline import CameraBaseline
    from probes.scoring import Mode

    base = CameraBaseline.from_dict(stored)
    modes = {}
    for mode in Mode:
        mb = base.mode(mode)
        modes[mode.value] = {"learned": mb.learned, "samples": mb.n,
                             "reference": mb.label if mb.learned and mb.source == "reference"
                             else None,
                             "refused": mb.rejected if not mb.learned else None}
    size = None
    if base.size is not None:
        # the frames the camera sends (the baseline keeps their analysis size)
        size = [base.size[0] * base.scale, base.size[1] * base.scale]
    return {"modes": modes, "learn_samples": base.learn_samples, "frame_size": size}


def baseline_resetter(context: Callable[[], ProbeContext | None],
                      persist: Callable[[], Awaitable[None]] | None = None) -> BaselineReset:
    """The service's `baseline_reset` for exporters.http: forget `camera`'s baselines in
    the live probe memory (`context().memory`, day and night alike), then persist the
    memory (the service's own `_persist`, which writes it to the store).

    Runs on the event loop: the picture probe reads and writes a camera's baseline
    without awaiting in between, so a reset never interleaves with that update.
    """

    async def reset(camera: str) -> dict[str, Any]:
        from probes.baseline import reset_baseline

        ctx = context()
        if ctx is None:
            raise RuntimeError("the probes have not started yet")
        mem = ctx.memory
        stored = mem.baselines.get(camera)
        before = describe_baseline(stored)
        had = reset_baseline(mem.baselines, camera)
        if persist is not None:
            await persist()
        return {"reset": True, "had_baseline": had, "before": before["modes"],
                "learn_samples": before["learn_samples"]}

    return reset


def baseline_describer(context: Callable[[], ProbeContext | None]) -> BaselineDescribe:
    """The service's `GET /admin/baselines/{camera}`."""

    async def describe(camera: str) -> dict[str, Any]:
        ctx = context()
        if ctx is None:
            raise RuntimeError("the probes have not started yet")
        return describe_baseline(ctx.memory.baselines.get(camera))

    return describe


def merge_reference(stored: dict[str, Any] | None, sent: dict[str, Any]) -> dict[str, Any]:
    """A camera's stored baseline with the reference modes of `sent` (a CameraBaseline
    dict) in place of its own. Raises BaselineRefused for anything else."""
    from probes.baseline import FORMAT, CameraBaseline

    if not isinstance(sent, dict) or sent.get("format") != FORMAT:
        raise BaselineRefused("not a camwatch baseline (wrong or missing format)")
    incoming = CameraBaseline.from_dict(sent)
    refs = {m: mb for m, mb in incoming.modes.items() if mb.learned and mb.source == "reference"}
    if incoming.size is None or not refs:
        raise BaselineRefused("the baseline sent holds no reference view")
    for mb in refs.values():
        if mb.detail is None or mb.thumb is None or mb.floors is None:
            raise BaselineRefused("the reference view lacks its figures")
    base = CameraBaseline.from_dict(stored)
    if base.size is not None and base.size != incoming.size:
        base.reset()  # the camera now sends another size: start from the reference
    base.size = incoming.size
    for mode, mb in refs.items():
        base.modes[mode] = mb
    return base.to_dict()


def baseline_setter(context: Callable[[], ProbeContext | None],
                    persist: Callable[[], Awaitable[None]] | None = None) -> BaselineSet:
    """The service's `POST /admin/baselines/{camera}/reference`: the reference modes sent
    become the camera's baselines in the live probe memory, persisted at once."""

    async def set_reference(camera: str, sent: dict[str, Any]) -> dict[str, Any]:
        ctx = context()
        if ctx is None:
            raise RuntimeError("the probes have not started yet")
        mem = ctx.memory
        mem.baselines[camera] = merge_reference(mem.baselines.get(camera), sent)
        if persist is not None:
            await persist()
        return {"set": True, **describe_baseline(mem.baselines[camera])}

    return set_reference
