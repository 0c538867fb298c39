"""The one loop of the host and recording checks (probes/gather.py), rule by rule, on
drivers written for the purpose (the real drivers are tested against the simulator and
hostile peers elsewhere): preference order, what is still missing, the first question,
final failures, the budget of later drivers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from inventory.models import Address, Protocol
from probes import gather as gather_mod
from probes.context import ProbeContext, Target
from probes.drivers.base import Ability, DeviceLink, Driver, DriverSession
from probes.gather import Asked, ask_drivers
from probes.reasons import DeviceError


def make_driver(name: str, abilities: set[Ability], answers: dict[Ability, object]) -> Driver:
    """A driver whose session answers each ability from `answers`: a value, an
    exception to raise, or a coroutine function to await."""

    class Session(DriverSession):
        async def _answer(self, ability: Ability) -> object:
            asked.append((name, ability))
            a = answers.get(ability)
            if isinstance(a, BaseException):
                raise a
            if callable(a):
                return await a()
            return a

        async def uptime(self) -> float | None:
            return await self._answer(Ability.UPTIME)  # type: ignore[return-value]

        async def disks(self):  # type: ignore[no-untyped-def]
            return await self._answer(Ability.DISKS)

    class Fake(Driver):
        def session(self, link: DeviceLink) -> DriverSession:
            return Session(self, link)

    Fake.name = name
    Fake.abilities = frozenset(abilities)
    return Fake()


asked: list[tuple[str, Ability]] = []


@pytest.fixture
def link() -> DeviceLink:
    asked.clear()
    target = Target("r", True, Address(host="127.0.0.1"), [Protocol.ONVIF], None)
    # the loop reads nothing of the inventory: the fakes stand for the table's drivers
    return DeviceLink(target, ProbeContext(inventory=None, secrets=None), None)  # type: ignore[arg-type]


def facts() -> tuple[dict[Ability, object], Callable[[], set[Ability]], gather_mod.Ask]:
    got: dict[Ability, object] = {}

    def missing() -> set[Ability]:
        return {Ability.UPTIME, Ability.DISKS} - set(got)

    async def ask(s: DriverSession, ability: Ability) -> bool:
        value = await (s.uptime() if ability == Ability.UPTIME else s.disks())
        if value is None:
            return False
        got[ability] = value
        return True

    return got, missing, ask


async def run(link: DeviceLink, drivers: list[Driver], monkeypatch: pytest.MonkeyPatch,
              later_budget: float | None = None) -> tuple[dict[Ability, object], Asked]:
    monkeypatch.setattr(gather_mod, "drivers_for", lambda protocols: drivers)
    got, missing, ask = facts()
    out = await ask_drivers(link, [Ability.UPTIME, Ability.DISKS], missing, ask, Asked(),
                            later_budget=later_budget)
    return got, out


U, D = Ability.UPTIME, Ability.DISKS


async def test_each_driver_is_asked_only_for_what_is_still_missing(link, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a = make_driver("a", {U}, {U: 5.0})
    b = make_driver("b", {U, D}, {U: 9.0, D: ["disk"]})
    got, out = await run(link, [a, b], monkeypatch)
    assert got == {U: 5.0, D: ["disk"]}  # the preferred driver's uptime stands
    assert asked == [("a", U), ("b", D)]
    assert out.driver == "a+b"


async def test_a_driver_failing_its_first_question_is_passed_over(link, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a = make_driver("a", {U, D}, {U: DeviceError("bad-xml", "x"), D: ["never asked"]})
    b = make_driver("b", {U, D}, {U: 7.0, D: DeviceError("not-supported", "y")})
    c = make_driver("c", {D}, {D: ["disk c"]})
    got, out = await run(link, [a, b, c], monkeypatch)
    assert ("a", D) not in asked  # passed over after its first question failed
    assert got == {U: 7.0, D: ["disk c"]}  # b's later failure left disks to c
    assert out.driver == "b+c" and [e.reason_code for e in out.errors] == ["bad-xml",
                                                                           "not-supported"]


async def test_a_final_failure_ends_the_loop_and_keeps_what_was_learnt(link, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a = make_driver("a", {U, D}, {U: 3.0, D: DeviceError("timeout", "slow")})
    b = make_driver("b", {D}, {D: ["never asked"]})
    got, out = await run(link, [a, b], monkeypatch)
    assert got == {U: 3.0} and out.stopped and out.driver == "a"
    assert ("b", D) not in asked


async def test_a_none_answer_is_no_answer_and_no_failure(link, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    a = make_driver("a", {U, D}, {U: None, D: ["disk a"]})
    b = make_driver("b", {U}, {U: 11.0})
    got, out = await run(link, [a, b], monkeypatch)
    assert got == {U: 11.0, D: ["disk a"]} and not out.errors


async def test_later_drivers_have_a_budget_the_first_does_not(link, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def never() -> object:  # cut off however late the budget's timer fires
        await asyncio.Event().wait()
        return ["never"]

    async def slow() -> object:
        await asyncio.sleep(0.3)
        return ["late disk"]

    a = make_driver("a", {U, D}, {U: 1.0, D: None})
    b = make_driver("b", {D}, {D: never})
    got, out = await run(link, [a, b], monkeypatch, later_budget=0.05)
    assert got == {U: 1.0} and out.driver == "a"  # b was cut off; a's answer stands
    first_slow = make_driver("a", {D}, {D: slow})
    got, out = await run(link, [first_slow], monkeypatch, later_budget=0.05)
    assert got == {D: ["late disk"]}  # nobody had answered yet: no budget
