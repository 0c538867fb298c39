"""The one loop of the host and recording checks: ask each listed driver, in the
table's order of preference, for what is still missing.

The rule, for every check alike:

- a driver is asked only for the abilities its session has that are still missing, in
  the check's order of abilities (what an earlier answer makes missing — a recorder's
  overwrite setting once a disk is seen full — is asked of the same driver too);
- what it answers is merged by the check's facts, where a fact already known stays (the
  preferred driver's answer wins; the recording check combines channel recordings);
- if the first question a driver is asked fails, the driver is passed over (it does not
  speak this protocol, or this firmware is broken); a later question that fails leaves
  that one fact unknown;
- a final failure (probes.reasons) ends the loop: the device itself is the problem;
  whatever was learnt until then is kept and judged;
- `later_budget`: once a driver has answered, each further driver gets at most this
  long (the host check asks the vendor API only for uptime and signals, and must still
  report in time what ONVIF said).

The facts are filled in place, so a check cut off by its deadline still judges what it
had learnt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from probes.drivers.base import Ability, DeviceLink, DriverSession
from probes.drivers.table import drivers_for
from probes.reasons import DeviceError

# Answers one ability from a session into the check's facts: True when the driver
# told something (a None answer is no answer).
Ask = Callable[[DriverSession, Ability], Awaitable[bool]]


@dataclass
class Asked:
    """Who answered (driver names, in order) and what failed on the way."""

    answered: list[str] = field(default_factory=list)
    errors: list[DeviceError] = field(default_factory=list)
    stopped: bool = False  # a final failure ended the loop
    # drivers passed over because their first question failed, and why
    passed_over: list[tuple[str, DeviceError]] = field(default_factory=list)

    @property
    def driver(self) -> str | None:
        """The drivers that told something, as results name them ("onvif+isapi")."""
        return "+".join(self.answered) if self.answered else None


async def ask_drivers(
    link: DeviceLink,
    order: Sequence[Ability],
    missing: Callable[[], set[Ability]],
    ask: Ask,
    asked: Asked,
    *,
    later_budget: float | None = None,
) -> Asked:
    """Run the loop over the drivers of `link`'s protocols; fills `asked` in place."""
    for driver in drivers_for(link.target.protocols):
        session = driver.session(link)
        try:
            todo = [a for a in order if a in missing() and a in session.abilities]
            if not todo:
                continue
            budget = later_budget if asked.answered else None
            try:
                async with asyncio.timeout(budget):
                    await _ask_one(driver.name, session, order, missing, ask, asked)
            except TimeoutError:
                if budget is None:
                    raise  # the check's own deadline: not this driver's to judge
                # a slow supplement: what the others said stands
            if asked.stopped:
                break
        finally:
            await session.aclose()
    return asked


async def _ask_one(
    name: str,
    session: DriverSession,
    order: Sequence[Ability],
    missing: Callable[[], set[Ability]],
    ask: Ask,
    asked: Asked,
) -> None:
    first = True
    try:
        await session.setup()
    except DeviceError as exc:
        asked.errors.append(exc)
        asked.stopped = exc.final
        return
    for ability in order:
        if ability not in missing() or ability not in session.abilities:
            continue  # an earlier answer of this driver filled it, or it cannot
        try:
            told = await ask(session, ability)
        except DeviceError as exc:
            asked.errors.append(exc)
            if exc.final:
                asked.stopped = True
                return
            if first:
                asked.passed_over.append((name, exc))
                return  # it failed its first question: pass it over
            told = False
        # Named as soon as it told something: a deadline may cut the rest.
        if told and name not in asked.answered:
            asked.answered.append(name)
        first = False
