from __future__ import annotations

import re

from server.core.routing import (
    AssignedTarget,
    HandlerContext,
    HandlerTarget,
    InboundRoute,
    LocalNumber,
    OrganisationConfig,
    QueueKind,
    QueueRef,
    QueueTarget,
    RouteField,
    choose_queue,
)

SUPPORT = QueueRef(QueueKind.WORKGROUP, 1)
SALES = QueueRef(QueueKind.WORKGROUP, 2)
SPANISH = QueueRef(QueueKind.WORKGROUP, 3)
ALICE = QueueRef(QueueKind.USER, 10)
MAIN = LocalNumber(id=1, e164="+19205550100", queue=SUPPORT)
DIRECT = LocalNumber(id=2, e164="+19205550101", queue=ALICE)


def vip(context: HandlerContext) -> str | None:
    return "workgroup:Sales" if "VIP" in context.body else None


def broken(context: HandlerContext) -> str | None:
    raise RuntimeError("boom")


def nowhere(context: HandlerContext) -> str | None:
    return "workgroup:Nope"


def config(*routes: InboundRoute) -> OrganisationConfig:
    return OrganisationConfig(
        id=1,
        slug="acme",
        region="US",
        routes=(*routes, InboundRoute(99, RouteField.ANI, re.compile(""), AssignedTarget(), True)),
        workgroups={"Support": 1, "Sales": 2, "Spanish": 3},
        users={"alice": 10},
        handlers={"vip": vip, "broken": broken, "nowhere": nowhere},
    )


ROUTES = config(
    InboundRoute(1, RouteField.BODY, re.compile(r"(?i)^hola"), QueueTarget(SPANISH)),
    InboundRoute(2, RouteField.ANI, re.compile(r"^\+1312"), QueueTarget(SALES)),
    InboundRoute(3, RouteField.DNIS, re.compile(r"0100$"), HandlerTarget("broken")),
    InboundRoute(4, RouteField.DNIS, re.compile(r"0100$"), HandlerTarget("nowhere")),
    InboundRoute(5, RouteField.BODY, re.compile("VIP"), HandlerTarget("vip")),
    InboundRoute(6, RouteField.BODY, re.compile("ghost"), HandlerTarget("not-loaded")),
)


def test_the_first_matching_route_wins() -> None:
    decision = choose_queue(ROUTES, number=MAIN, ani="+13125550000", body="Hola")
    assert (decision.queue, decision.route_id) == (SPANISH, 1)


def test_ani_route() -> None:
    decision = choose_queue(ROUTES, number=MAIN, ani="+13125550000", body="hi")
    assert (decision.queue, decision.route_id) == (SALES, 2)


def test_a_failing_handler_is_reported_and_the_next_route_decides() -> None:
    decision = choose_queue(ROUTES, number=MAIN, ani="+14145550000", body="I am VIP")
    assert (decision.queue, decision.route_id) == (SALES, 5)
    assert decision.problems == (
        "handler 'broken' raised RuntimeError: boom",
        "handler 'nowhere' returned 'workgroup:Nope', which names no queue",
    )


def test_the_default_route_sends_to_the_numbers_workgroup() -> None:
    decision = choose_queue(ROUTES, number=MAIN, ani="+14145550000", body="ghost")
    assert (decision.queue, decision.route_id) == (SUPPORT, 99)
    assert "handler 'not-loaded' is not loaded" in decision.problems


def test_a_direct_number_goes_to_its_user_whatever_the_routes() -> None:
    decision = choose_queue(ROUTES, number=DIRECT, ani="+13125550000", body="Hola")
    assert (decision.queue, decision.route_id) == (ALICE, None)


def test_a_default_route_can_name_a_queue() -> None:
    routes = OrganisationConfig(
        id=1,
        slug="acme",
        region="US",
        routes=(InboundRoute(9, RouteField.ANI, re.compile("never"), QueueTarget(SALES), True),),
    )
    assert choose_queue(routes, number=MAIN, ani="+14145550000", body="x").queue == SALES
