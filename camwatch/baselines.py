"""The service's side of picture baselines: forgetting a camera's baselines after its
lens was cleaned, refocused or re-aimed (`POST /admin/baselines/{camera}/reset`, which
`camwatch baseline reset` calls).

Each camera is judged against its own baseline (probes/baseline.py), learned per mode
(day / night) in the probe memory; `baseline_resetter()` is what the service hands to
the HTTP server for that endpoint.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from probes.context import ProbeContext

BaselineReset = Callable[[str], Awaitable[dict[str, Any]]]


def describe_baseline(stored: dict[str, Any] | None) -> dict[str, Any]:
    """What a stored baseline holds, per mode: learned or not, and from how many
    samples; plus how many samples a mode needs to be learned."""
    from probes.baseline import CameraBaseline
    from probes.scoring import Mode

    base = CameraBaseline.from_dict(stored)
    modes = {}
    for mode in Mode:
        mb = base.mode(mode)
        modes[mode.value] = {"learned": mb.learned, "samples": mb.n}
    return {"modes": modes, "learn_samples": base.learn_samples}


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
