"""Tests for server/adapters/config_files.py: reading and checking a configuration folder."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from server.adapters.config_document import (
    ConfigInvalid,
    ConfigProblem,
    Destination,
    DestinationKind,
    EscalationStep,
    OrganisationDocument,
    ProfileQueueSpec,
    RoutingProfileSpec,
    WorkgroupSpec,
    credential_variable,
)
from server.adapters.config_files import load_config_folder
from server.adapters.config_writer import write_config_folder
from server.core.routing import RouteField

REPOSITORY = Path(__file__).resolve().parents[2]
DEMO = REPOSITORY / "routing_profiles" / "demo"


@pytest.fixture
def handlers_importable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `tests.fixtures.routing_handlers` importable however pytest was started."""
    monkeypatch.syspath_prepend(str(REPOSITORY))


def demo_folder(tmp_path: Path, **files: str) -> Path:
    """Copy the demo folder into `tmp_path`, replacing the files given (`people="..."`).

    The demo's profiles.yaml names the demo's workgroups, so it is left out when `people` is
    replaced and `profiles` is not given; outbound_routes.yaml, which names the demo's accounts
    and workgroups, likewise when `people` or `brokers` is replaced.
    """
    folder = tmp_path / "organisation"
    shutil.copytree(DEMO, folder)
    if "people" in files and "profiles" not in files:
        (folder / "profiles.yaml").unlink()
    if ("people" in files or "brokers" in files) and "outbound_routes" not in files:
        (folder / "outbound_routes.yaml").unlink()  # it names the demo's accounts and workgroups
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


def problems_of(folder: Path, environ: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    with pytest.raises(ConfigInvalid) as caught:
        load_config_folder(folder, environ=environ or {})
    return [(problem.file, problem.where, problem.message) for problem in caught.value.problems]


def load(folder: Path, environ: dict[str, str] | None = None) -> OrganisationDocument:
    return load_config_folder(folder, environ=environ or {})


ROUTES = """\
    routes:
      - name: spanish
        type: BODY
        pattern: '(?i)^hola'
        destination: {{workgroup: Spanish}}
      - name: second
        type: ANI
        pattern: '{pattern}'
        destination: {destination}
    default:
      destination: {{assigned: true}}
"""


def routes(*, pattern: str = "^[+]1312", destination: str = "{workgroup: Sales}") -> str:
    return ROUTES.format(pattern=pattern, destination=destination)


# --- the demo and the document --------------------------------------------------------------------


def test_the_demo_folder_loads_clean() -> None:
    document = load_config_folder(DEMO, environ={})

    assert document.organisation.slug == "demo"
    assert document.organisation.provider.slug == "demo-provider"
    assert [user.username for user in document.users] == ["alice", "bob", "carol", "dave"]
    assert [user.username for user in document.users if user.send_alerts] == ["carol"]
    members = {workgroup.name: workgroup.members for workgroup in document.workgroups}
    assert members == {"Sales": ("bob",), "Spanish": ("alice",), "Support": ("alice", "bob")}
    accounts = {account.public_id: account for account in document.accounts}
    assert {public_id: account.broker for public_id, account in accounts.items()} == {
        "demo-bandwidth": "bandwidth",
        "demo-inteliquent": "inteliquent",
        "demo-sandbox": "sandbox",
        "demo-twilio": "twilio",
    }
    assert accounts["demo-sandbox"].credentials == {"webhook_key": "demo-sandbox-key"}
    assert accounts["demo-sandbox"].region == "US"
    numbers = {number.e164: number for number in document.numbers}
    assert sorted(numbers) == [f"+1920555010{digit}" for digit in range(5)]
    assert numbers["+19205550101"].user == "alice"
    assert numbers["+19205550101"].workgroup is None
    assert numbers["+19205550102"].account == "demo-twilio"
    assert [(route.name, route.field, route.destination) for route in document.routes] == [
        ("spanish", RouteField.BODY, Destination(DestinationKind.WORKGROUP, "Spanish")),
        ("chicago-sales", RouteField.ANI, Destination(DestinationKind.WORKGROUP, "Sales")),
    ]
    assert document.default_destination == Destination(DestinationKind.ASSIGNED)


def test_the_demo_folder_has_routing_profiles_and_queue_settings() -> None:
    document = load_config_folder(DEMO, environ={})

    profiles = {user.username: user.routing_profile for user in document.users}
    assert profiles == {
        "alice": "bilingual",
        "bob": "sales-and-support",
        "carol": None,
        "dave": None,
    }
    assert document.users[0].skills == {"spanish": 8}
    assert document.profiles == (
        RoutingProfileSpec(
            "bilingual",
            3,
            {},
            (ProfileQueueSpec("Spanish", 1, 0), ProfileQueueSpec("Support", 2, 0)),
        ),
        RoutingProfileSpec(
            "sales-and-support",
            3,
            {},
            (ProfileQueueSpec("Sales", 1, 0), ProfileQueueSpec("Support", 2, 0)),
        ),
        RoutingProfileSpec(
            "support-agent",
            3,
            {},
            (ProfileQueueSpec("Support", 1, 0), ProfileQueueSpec("Spanish", 2, 120)),
        ),
    )
    workgroups = {workgroup.name: workgroup for workgroup in document.workgroups}
    assert workgroups["Support"] == WorkgroupSpec("Support", ("alice", "bob"))
    assert workgroups["Sales"].strategy == "least_busy"
    assert workgroups["Sales"].escalation == (EscalationStep(180, overflow_to="Support"),)
    assert workgroups["Spanish"].required_skills == {"spanish": 5}
    assert workgroups["Spanish"].escalation == (
        EscalationStep(120, drop_skills=True),
        EscalationStep(300, overflow_to="Support"),
    )


def test_credentials_never_show_in_repr() -> None:
    document = load_config_folder(DEMO, environ={})

    assert "demo-sandbox-key" not in repr(document)


def test_only_organisation_and_inbound_routes_are_required(tmp_path: Path) -> None:
    folder = tmp_path / "small"
    folder.mkdir()
    (folder / "organisation.yaml").write_text(
        "slug: small\nname: Small\nprovider: {slug: p, name: P}\n"
    )
    (folder / "inbound_routes.yaml").write_text("default: {destination: {assigned: true}}\n")

    document = load(folder)

    assert document.organisation.country == "US"
    assert (document.users, document.accounts, document.numbers, document.routes) == ((),) * 4


def test_defaults_fill_what_a_file_leaves_out(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        organisation="slug: demo\nname: Demo\nprovider: {slug: p, name: P}\ncountry: GB\n",
        people="users: [{username: erin}, {username: fay, send_alerts: true}]\n"
        "workgroups: [{name: Support}, {name: Sales}]\n",
        profiles="profiles: [{name: p, queues: [{workgroup: Support, priority: 1}]}]\n",
        brokers="accounts: [{public_id: uk-sandbox, broker: sandbox, "
        "credentials: {webhook_key: k}}]\n",
        numbers="numbers: [{number: '07700 900123', account: uk-sandbox, workgroup: Support}]\n",
        inbound_routes="default: {destination: {assigned: true}}\n",
    )

    document = load(folder)

    assert document.users[0].display_name == "erin"
    assert document.users[0].role == "agent"
    assert (document.users[0].routing_profile, document.users[0].skills) == (None, {})
    assert document.workgroups[0] == WorkgroupSpec(
        "Sales",
        (),
        strategy="longest_idle",
        offer_timeout_s=30,
        wrap_up_timeout_s=60,
        transfer_priority_boost=10,
        required_skills={},
        escalation=(),
    )
    assert document.profiles == (RoutingProfileSpec("p", 3, {}, (ProfileQueueSpec("Support", 1),)),)
    account = document.accounts[0]
    assert (account.name, account.region, account.inbound_enabled, account.mms_enabled) == (
        "uk-sandbox",
        "GB",
        True,
        False,
    )
    number = document.numbers[0]
    assert (number.e164, number.friendly_name, number.mms_enabled) == (
        "+447700900123",
        "+447700900123",
        None,
    )


# --- environment placeholders ---------------------------------------------------------------------


def test_placeholders_are_replaced_from_the_environment(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        organisation="slug: demo\nname: Demo ${SUFFIX:-East}\nprovider: {slug: p, name: P}\n",
    )

    document = load(folder, {"PARLEY_DEMO_TWILIO_TOKEN": "from-env", "SUFFIX": "West"})

    twilio = next(account for account in document.accounts if account.broker == "twilio")
    assert twilio.credentials["auth_token"] == "from-env"
    assert document.organisation.name == "Demo West"
    assert load(folder).organisation.name == "Demo East"


def test_an_unset_variable_without_fallback_is_a_problem(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        brokers="""\
        accounts:
          - public_id: demo-sandbox
            broker: sandbox
            credentials: {webhook_key: '${SANDBOX_KEY}'}
          - public_id: demo-twilio
            broker: twilio
            credentials: {account_sid: 'AC${SID', auth_token: x}
        """,
        numbers="numbers: []\n",
    )

    assert problems_of(folder) == [
        (
            "brokers.yaml",
            "accounts[0] 'demo-sandbox'.credentials",
            "webhook_key: environment variable SANDBOX_KEY is not set",
        ),
        (
            "brokers.yaml",
            "accounts[1] 'demo-twilio'.credentials",
            "account_sid: '${' must start ${NAME} or ${NAME:-fallback}",
        ),
    ]
    (folder / "brokers.yaml").write_text(
        "accounts: [{public_id: demo-sandbox, broker: sandbox, "
        "credentials: {webhook_key: '${SANDBOX_KEY}'}}]\n"
    )
    document = load(folder, {"SANDBOX_KEY": "from-env"})
    assert document.accounts[0].credentials == {"webhook_key": "from-env"}


# --- syntax, keys and types -----------------------------------------------------------------------


def test_yaml_syntax_errors_give_the_line(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path, people="users:\n  - username: alice\n    role: [agent\n")

    [(file, where, message)] = problems_of(folder)[:1]

    assert (file, where) == ("people.yaml", "line 4, column 1")
    assert message.startswith("YAML syntax: ")


def test_a_key_written_twice_is_a_problem(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path, organisation="slug: demo\nname: A\nname: B\nprovider: {slug: p, name: P}\n"
    )

    assert problems_of(folder) == [
        ("organisation.yaml", "line 3, column 1", "YAML syntax: key 'name' is written twice")
    ]


def test_unknown_and_missing_keys(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        organisation="slug: demo\nnmae: Demo\nprovider: {slug: p, name: P}\n",
        inbound_routes="""\
        routes:
          - name: spanish
            type: BODY
            destination: {workgroup: Spanish}
        default: {destination: {assigned: true}}
        """,
    )

    assert problems_of(folder) == [
        ("organisation.yaml", "top level", "unknown key 'nmae'; did you mean 'name'?"),
        ("organisation.yaml", "top level", "name is required"),
        ("inbound_routes.yaml", "routes[0] 'spanish'", "pattern is required"),
    ]


def test_wrong_types(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        people="""\
        users:
          - username: alice
            send_alerts: yes please
          - username: [bob]
          - {username: carol, send_alerts: true}
        workgroups: {name: Support}
        """,
        numbers="numbers: []\n",
        inbound_routes="default: {destination: {assigned: true}}\n",
    )

    assert problems_of(folder) == [
        ("people.yaml", "users[0] 'alice'", "send_alerts must be true or false, got a string"),
        ("people.yaml", "users[1]", "username must be a string, got a list"),
        ("people.yaml", "top level", "workgroups must be a list, got a mapping"),
    ]


def test_roles_slugs_and_public_ids_are_checked(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        organisation="slug: Demo Org\nname: Demo\nprovider: {slug: p, name: P}\ncountry: XX\n",
        people="users: [{username: alice, role: boss}]\n",
        brokers="accounts: [{public_id: 'no spaces!', broker: sandbox, "
        "credentials: {webhook_key: k}}]\n",
        numbers="numbers: []\n",
        inbound_routes="default: {destination: {assigned: true}}\n",
    )

    assert [(file, where) for file, where, _ in problems_of(folder)] == [
        ("organisation.yaml", "top level"),
        ("organisation.yaml", "top level"),
        ("people.yaml", "users[0] 'alice'"),
        ("brokers.yaml", "accounts[0] 'no spaces!'"),
    ]
    messages = [message for _, _, message in problems_of(folder)]
    assert messages[0].startswith("slug 'Demo Org' is not valid")
    assert messages[1] == "country 'XX' is not an ISO 3166 region code such as 'US'"
    assert messages[2] == "role 'boss' is not one of: agent, supervisor, admin"
    assert messages[3].startswith("public_id 'no spaces!' is not valid")


def test_files_missing_and_files_unknown(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path)
    (folder / "organisation.yaml").unlink()
    (folder / "number.yaml").write_text("numbers: []\n")

    assert problems_of(folder) == [
        ("organisation.yaml", "top level", "the file is missing"),
        (
            "number.yaml",
            "top level",
            "unknown file; expected some of: organisation.yaml, people.yaml, profiles.yaml, "
            "brokers.yaml, numbers.yaml, inbound_routes.yaml, outbound_routes.yaml",
        ),
    ]


def test_a_folder_that_is_not_there(tmp_path: Path) -> None:
    assert problems_of(tmp_path / "nowhere") == [
        (str(tmp_path / "nowhere"), "top level", "is not a folder")
    ]


# --- duplicates -----------------------------------------------------------------------------------


def test_duplicates_are_problems(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        people="""\
        users: [{username: alice}, {username: alice, send_alerts: true}]
        workgroups: [{name: Support, members: [alice, alice]}, {name: Support}]
        """,
        brokers="""\
        accounts:
          - {public_id: demo-sandbox, broker: sandbox, credentials: {webhook_key: k}}
          - {public_id: demo-sandbox, broker: sandbox, credentials: {webhook_key: k}}
        """,
        numbers="""\
        numbers:
          - {number: +1 920 555 0100, account: demo-sandbox, workgroup: Support}
          - {number: '9205550100', account: demo-sandbox, workgroup: Support}
        """,
        inbound_routes="""\
        routes:
          - {name: one, type: BODY, pattern: a, destination: {workgroup: Support}}
          - {name: one, type: BODY, pattern: b, destination: {workgroup: Support}}
        default: {destination: {assigned: true}}
        """,
    )

    assert problems_of(folder) == [
        ("people.yaml", "users[1] 'alice'", "username 'alice' is listed twice"),
        ("people.yaml", "workgroups[0] 'Support'", "member 'alice' is listed twice"),
        ("people.yaml", "workgroups[1] 'Support'", "workgroup 'Support' is listed twice"),
        ("brokers.yaml", "accounts[1] 'demo-sandbox'", "public_id 'demo-sandbox' is listed twice"),
        (
            "numbers.yaml",
            "numbers[1] '9205550100'",
            "number +19205550100 is listed twice (also numbers[0] '+1 920 555 0100')",
        ),
        ("inbound_routes.yaml", "routes[1] 'one'", "route 'one' is listed twice"),
    ]


# --- routes ---------------------------------------------------------------------------------------


def test_a_pattern_that_does_not_compile(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path, inbound_routes=routes(pattern="(hola"))

    assert problems_of(folder) == [
        (
            "inbound_routes.yaml",
            "routes[1] 'second'",
            "pattern does not compile: missing ), unterminated subpattern at position 0",
        )
    ]


def test_route_type_and_destination_are_checked(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        inbound_routes="""\
        routes:
          - {name: a, type: ani, pattern: x, destination: {workgroup: Support, user: bob}}
          - {name: b, type: BODY, pattern: x, destination: {assigned: true}}
          - {name: default, type: BODY, pattern: x, destination: {user: bob}}
        default: {destination: {assigned: false}}
        """,
    )

    assert problems_of(folder) == [
        ("inbound_routes.yaml", "routes[0] 'a'", "type 'ani' is not one of: ANI, DNIS, BODY"),
        (
            "inbound_routes.yaml",
            "routes[0] 'a'.destination",
            "name exactly one of: workgroup, user, handler",
        ),
        (
            "inbound_routes.yaml",
            "routes[1] 'b'.destination",
            "unknown key 'assigned'; expected one of: workgroup, user, handler",
        ),
        (
            "inbound_routes.yaml",
            "routes[1] 'b'.destination",
            "name exactly one of: workgroup, user, handler",
        ),
        (
            "inbound_routes.yaml",
            "routes[2] 'default'",
            "the name 'default' is kept for the default route",
        ),
        ("inbound_routes.yaml", "default.destination", "assigned must be true"),
    ]


def test_the_default_route_is_required(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path, inbound_routes="routes: []\n")

    assert problems_of(folder) == [("inbound_routes.yaml", "top level", "default is required")]


@pytest.mark.usefixtures("handlers_importable")
def test_handlers_must_import_and_be_callable(tmp_path: Path) -> None:
    module = "tests.fixtures.routing_handlers"
    folder = demo_folder(
        tmp_path,
        inbound_routes=f"""\
        routes:
          - {{name: vip, type: BODY, pattern: VIP, destination: {{handler: '{module}:vip'}}}}
          - {{name: b, type: BODY, pattern: x, destination: {{handler: '{module}:nope'}}}}
          - {{name: c, type: BODY, pattern: x, destination: {{handler: '{module}:__all__'}}}}
          - {{name: d, type: BODY, pattern: x, destination: {{handler: 'no_such_pkg.mod:f'}}}}
          - {{name: e, type: BODY, pattern: x, destination: {{handler: '{module}'}}}}
        default: {{destination: {{handler: '{module}:broken'}}}}
        """,
    )

    found = problems_of(folder)

    assert [(where, message.split(":")[0]) for _, where, message in found] == [
        ("routes[1] 'b'.destination", f"handler '{module}"),
        ("routes[2] 'c'.destination", f"handler '{module}"),
        ("routes[3] 'd'.destination", "handler 'no_such_pkg.mod"),
        ("routes[4] 'e'.destination", f"handler '{module}' must be written 'package.module"),
    ]
    assert found[0][2].endswith(f"{module} has no nope")
    assert found[1][2].endswith(f"{module}.__all__ is not callable")
    assert "cannot import no_such_pkg.mod" in found[2][2]


@pytest.mark.usefixtures("handlers_importable")
def test_a_handler_destination_loads(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        inbound_routes="""\
        routes:
          - name: vip
            type: BODY
            pattern: VIP
            destination: {handler: 'tests.fixtures.routing_handlers:vip'}
        default: {destination: {workgroup: Support}}
        """,
    )

    document = load(folder)

    assert document.routes[0].destination == Destination(
        DestinationKind.HANDLER, "tests.fixtures.routing_handlers:vip"
    )
    assert document.default_destination == Destination(DestinationKind.WORKGROUP, "Support")


# --- references, numbers and credentials ----------------------------------------------------------


def test_references_must_exist(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        people="""\
        users: [{username: alice, send_alerts: true}]
        workgroups: [{name: Support, members: [alice, zed]}]
        """,
        numbers="""\
        numbers:
          - {number: '+19205550100', account: nowhere, workgroup: Support}
          - {number: '+19205550101', account: demo-sandbox, workgroup: Sales}
          - {number: '+19205550102', account: demo-sandbox, user: bob}
        """,
        inbound_routes="""\
        routes:
          - {name: spanish, type: BODY, pattern: hola, destination: {workgroup: Spanish2}}
          - {name: second, type: ANI, pattern: x, destination: {user: bob}}
        default: {destination: {workgroup: Nobody}}
        """,
    )

    assert problems_of(folder) == [
        ("people.yaml", "workgroups[0] 'Support'", "member 'zed' is not a user in people.yaml"),
        ("numbers.yaml", "numbers[0] '+19205550100'", "account 'nowhere' is not in brokers.yaml"),
        ("numbers.yaml", "numbers[1] '+19205550101'", "workgroup 'Sales' is not in people.yaml"),
        ("numbers.yaml", "numbers[2] '+19205550102'", "user 'bob' is not in people.yaml"),
        (
            "inbound_routes.yaml",
            "routes[0] 'spanish'.destination",
            "workgroup 'Spanish2' is not in people.yaml",
        ),
        (
            "inbound_routes.yaml",
            "routes[1] 'second'.destination",
            "user 'bob' is not in people.yaml",
        ),
        ("inbound_routes.yaml", "default.destination", "workgroup 'Nobody' is not in people.yaml"),
    ]


def test_numbers_must_be_possible_and_assigned_once(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        numbers="""\
        numbers:
          - {number: '12', account: demo-sandbox, workgroup: Support}
          - {number: '+19205550101', account: demo-sandbox, workgroup: Support, user: alice}
          - {number: '+19205550102', account: demo-sandbox}
          - {number: '+19205550103', account: demo-sandbox, user: alice, mms_enabled: 1}
        """,
    )

    assert problems_of(folder) == [
        ("numbers.yaml", "numbers[0] '12'", "number: '12' is not a possible phone number"),
        ("numbers.yaml", "numbers[1] '+19205550101'", "name exactly one of workgroup or user"),
        ("numbers.yaml", "numbers[2] '+19205550102'", "name exactly one of workgroup or user"),
        (
            "numbers.yaml",
            "numbers[3] '+19205550103'",
            "mms_enabled must be true or false, got a number",
        ),
    ]


def test_brokers_and_credentials_are_checked_by_the_broker(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        brokers="""\
        accounts:
          - {public_id: demo-sandbox, broker: sandbox, credentials: {webhook_key: k, extra: x}}
          - {public_id: demo-twilio, broker: twilio, credentials: {account_sid: AC1, auth_token: t}}
          - {public_id: demo-inteliquent, broker: twillio, credentials: {}}
          - {public_id: demo-bandwidth, broker: bandwidth}
        """,
    )

    assert problems_of(folder) == [
        (
            "brokers.yaml",
            "accounts[0] 'demo-sandbox'.credentials",
            "unknown credential field 'extra'",
        ),
        (
            "brokers.yaml",
            "accounts[1] 'demo-twilio'.credentials",
            "account_sid must be 'AC' followed by 32 hexadecimal digits",
        ),
        (
            "brokers.yaml",
            "accounts[2] 'demo-inteliquent'",
            "unknown broker 'twillio'; known: bandwidth, inteliquent, sandbox, twilio",
        ),
        (
            "brokers.yaml",
            "accounts[3] 'demo-bandwidth'.credentials",
            "webhook_username is required",
        ),
        (
            "brokers.yaml",
            "accounts[3] 'demo-bandwidth'.credentials",
            "webhook_password is required",
        ),
    ]


def test_someone_receives_alerts_when_there_are_broker_accounts(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path, people="users: [{username: alice}]\n")
    (folder / "numbers.yaml").unlink()
    (folder / "inbound_routes.yaml").write_text("default: {destination: {assigned: true}}\n")

    assert problems_of(folder) == [
        (
            "people.yaml",
            "users",
            "no user has send_alerts: true; brokers.yaml has accounts, and opt-out alerts "
            "need someone to receive them",
        )
    ]
    (folder / "brokers.yaml").write_text("accounts: []\n")
    assert load(folder).users[0].send_alerts is False


def test_a_broken_file_does_not_cascade_into_reference_problems(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path, people="users: [\n", brokers="accounts: {\n")

    assert [file for file, _, _ in problems_of(folder)] == ["people.yaml", "brokers.yaml"]


# --- every problem at once ------------------------------------------------------------------------


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        organisation="slug: demo\nprovider: {slug: p}\n",
        people="users: [{username: alice, role: boss}]\n",
        inbound_routes=routes(pattern="(x"),
    )

    with pytest.raises(ConfigInvalid) as caught:
        load(folder)

    problems = caught.value.problems
    assert {problem.file for problem in problems} == {
        "organisation.yaml",
        "people.yaml",
        "numbers.yaml",
        "inbound_routes.yaml",
    }
    assert len(problems) >= 6
    assert str(caught.value).splitlines() == [
        f"{problem.file}: {problem.where}: {problem.message}" for problem in problems
    ]
    assert str(ConfigProblem("a.yaml", "b", "c")) == "a.yaml: b: c"


# --- writing --------------------------------------------------------------------------------------


def test_written_folders_read_back_equal_without_holding_secrets(tmp_path: Path) -> None:
    document = load_config_folder(DEMO, environ={})

    write_config_folder(document, tmp_path / "out")

    written = "".join(path.read_text() for path in sorted((tmp_path / "out").iterdir()))
    for account in document.accounts:
        for value in account.credentials.values():
            assert value not in written
    assert "${PARLEY_DEMO_TWILIO_AUTH_TOKEN}" in written
    environ = {
        credential_variable(public_id=account.public_id, field=key): value
        for account in document.accounts
        for key, value in account.credentials.items()
    }
    assert load_config_folder(tmp_path / "out", environ=environ) == document
    with pytest.raises(ConfigInvalid) as caught:
        load_config_folder(tmp_path / "out", environ={})
    assert all("is not set" in problem.message for problem in caught.value.problems)


# --- queue settings, escalation and routing profiles ----------------------------------------------

NO_NUMBERS = "numbers: []\n"
DEFAULT_ONLY = "default: {destination: {assigned: true}}\n"


def test_workgroup_settings_and_skills_are_checked(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        people="""\
        users:
          - {username: alice, send_alerts: true, skills: {Spanish: 8, french: 11, german: true}}
          - {username: bob, skills: [spanish]}
        workgroups:
          - name: Support
            members: [alice]
            strategy: fastest
            offer_timeout_s: 3
            wrap_up_timeout_s: -1
            transfer_priority_boost: '10'
          - name: Sales
            offer_timeout_s: 30.5
            wrap_up_timeout_s: 3601
            transfer_priority_boost: 1001
            required_skills: {sales: 0}
            priority: 2
        """,
        numbers=NO_NUMBERS,
        inbound_routes=DEFAULT_ONLY,
    )

    assert problems_of(folder) == [
        (
            "people.yaml",
            "users[0] 'alice'.skills",
            "skill 'Spanish' is not valid: lower-case letters, digits, '-' and '_', at most 64",
        ),
        (
            "people.yaml",
            "users[0] 'alice'.skills",
            "french: level must be a whole number from 1 to 10, got 11",
        ),
        (
            "people.yaml",
            "users[0] 'alice'.skills",
            "german: level must be a whole number from 1 to 10, got True",
        ),
        ("people.yaml", "users[1] 'bob'.skills", "expected a mapping (skill: level), got a list"),
        (
            "people.yaml",
            "workgroups[0] 'Support'",
            "strategy 'fastest' is not one of: longest_idle, least_busy, round_robin",
        ),
        ("people.yaml", "workgroups[0] 'Support'", "offer_timeout_s must be from 5 to 600, got 3"),
        (
            "people.yaml",
            "workgroups[0] 'Support'",
            "wrap_up_timeout_s must be from 0 to 3600, got -1",
        ),
        (
            "people.yaml",
            "workgroups[0] 'Support'",
            "transfer_priority_boost must be a whole number, got a string",
        ),
        (
            "people.yaml",
            "workgroups[1] 'Sales'",
            "unknown key 'priority'; expected one of: name, members, strategy, offer_timeout_s, "
            "wrap_up_timeout_s, transfer_priority_boost, required_skills, escalation, "
            "timeouts, notices, max_wait, dashboard",
        ),
        (
            "people.yaml",
            "workgroups[1] 'Sales'",
            "offer_timeout_s must be a whole number, got 30.5",
        ),
        (
            "people.yaml",
            "workgroups[1] 'Sales'",
            "wrap_up_timeout_s must be from 0 to 3600, got 3601",
        ),
        (
            "people.yaml",
            "workgroups[1] 'Sales'",
            "transfer_priority_boost must be from 0 to 1000, got 1001",
        ),
        (
            "people.yaml",
            "workgroups[1] 'Sales'.required_skills",
            "sales: level must be a whole number from 1 to 10, got 0",
        ),
    ]


def test_escalation_steps_are_checked(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        people="""\
        users: [{username: alice, send_alerts: true}]
        workgroups:
          - name: Support
            escalation:
              - {after_s: 120, overflow_to: Sales}
              - {after_s: 120, drop_skills: true}
              - {after_s: 60, overflow_to: Sales}
              - {after_s: 300, drop_skills: false}
              - {after_s: 400}
              - {after_s: 500, drop_skills: true, overflow_to: Sales}
              - {after_s: 0, drop_skills: true}
              - {overflow_to: Sales}
          - name: Sales
            escalation: {after_s: 10, overflow_to: Support}
          - name: Spanish
            escalation:
              - {after_s: 60, overflow_to: Spanish}
              - {after_s: 90, overflow_to: Nowhere}
              - {after_s: 86401, overflow_to: Support}
        """,
        numbers=NO_NUMBERS,
    )

    support = "workgroups[0] 'Support'.escalation"
    spanish = "workgroups[2] 'Spanish'.escalation"
    assert problems_of(folder) == [
        ("people.yaml", f"{support}[1]", "after_s must be greater than the step before's (120)"),
        ("people.yaml", f"{support}[2]", "after_s must be greater than the step before's (120)"),
        ("people.yaml", f"{support}[3]", "drop_skills must be true"),
        ("people.yaml", f"{support}[4]", "name exactly one of drop_skills or overflow_to"),
        ("people.yaml", f"{support}[5]", "name exactly one of drop_skills or overflow_to"),
        ("people.yaml", f"{support}[6]", "after_s must be from 1 to 86400, got 0"),
        ("people.yaml", f"{support}[7]", "after_s is required"),
        ("people.yaml", "workgroups[1] 'Sales'", "escalation must be a list, got a mapping"),
        ("people.yaml", f"{spanish}[2]", "after_s must be from 1 to 86400, got 86401"),
        ("people.yaml", f"{spanish}[0]", "overflow_to 'Spanish' is the workgroup itself"),
        ("people.yaml", f"{spanish}[1]", "overflow_to 'Nowhere' is not a workgroup in people.yaml"),
    ]


def test_overflow_steps_may_not_loop(tmp_path: Path) -> None:
    workgroups = """\
    users: [{username: alice, send_alerts: true}]
    workgroups:
      - name: Support
        escalation:
          - {after_s: 60, drop_skills: true}
          - {after_s: 600, overflow_to: Sales}
      - {name: Sales, escalation: [{after_s: 300, overflow_to: Spanish}]}
      - {name: Spanish, escalation: [{after_s: 120, overflow_to: %s}]}
    """
    looping = demo_folder(tmp_path / "looping", people=workgroups % "Support", numbers=NO_NUMBERS)
    chained = demo_folder(tmp_path / "chained", people=workgroups % "Sales", numbers=NO_NUMBERS)

    assert problems_of(looping) == [
        (
            "people.yaml",
            "workgroups[0] 'Support'.escalation[1]",
            "overflow_to 'Sales' makes a loop: Support -> Sales -> Spanish -> Support",
        )
    ]
    assert problems_of(chained) == [
        (
            "people.yaml",
            "workgroups[1] 'Sales'.escalation[0]",
            "overflow_to 'Spanish' makes a loop: Sales -> Spanish -> Sales",
        )
    ]
    (chained / "people.yaml").write_text(
        textwrap.dedent(workgroups % "Support").replace("overflow_to: Spanish", "drop_skills: true")
    )
    found = {workgroup.name: workgroup for workgroup in load(chained).workgroups}
    assert found["Support"].escalation == (
        EscalationStep(60, drop_skills=True),
        EscalationStep(600, overflow_to="Sales"),
    )
    assert found["Sales"].escalation == (EscalationStep(300, drop_skills=True),)
    assert found["Spanish"].escalation == (EscalationStep(120, overflow_to="Support"),)


def test_profiles_are_checked(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        profiles="""\
        profiles:
          - name: bilingual
            sms_capacity: 0
            queues:
              - {workgroup: Spanish, priority: 0}
              - {workgroup: Support, priority: 2, delay_s: -5}
              - {workgroup: Spanish, priority: 3}
              - {workgroup: Billing, priority: 1}
              - {workgroup: Sales}
              - {workgroup: Sales, priority: 1, weight: 2}
          - name: bilingual
            sms_capacity: 21
            skills: {spanish: 0}
          - name: sales-and-support
            sms_capacity: '3'
            queues: {workgroup: Sales, priority: 1}
          - {sms_capacity: 2}
        """,
    )

    bilingual = "profiles[0] 'bilingual'"
    assert problems_of(folder) == [
        ("profiles.yaml", bilingual, "sms_capacity must be from 1 to 20, got 0"),
        ("profiles.yaml", f"{bilingual}.queues[0] 'Spanish'", "priority must be at least 1, got 0"),
        (
            "profiles.yaml",
            f"{bilingual}.queues[1] 'Support'",
            "delay_s must be at least 0, got -5",
        ),
        (
            "profiles.yaml",
            f"{bilingual}.queues[2] 'Spanish'",
            "workgroup 'Spanish' is listed twice",
        ),
        (
            "profiles.yaml",
            f"{bilingual}.queues[3] 'Billing'",
            "workgroup 'Billing' is not in people.yaml",
        ),
        ("profiles.yaml", f"{bilingual}.queues[4] 'Sales'", "priority is required"),
        (
            "profiles.yaml",
            f"{bilingual}.queues[5] 'Sales'",
            "unknown key 'weight'; expected one of: workgroup, priority, delay_s",
        ),
        ("profiles.yaml", f"{bilingual}.queues[5] 'Sales'", "workgroup 'Sales' is listed twice"),
        ("profiles.yaml", "profiles[1] 'bilingual'", "profile 'bilingual' is listed twice"),
        ("profiles.yaml", "profiles[1] 'bilingual'", "sms_capacity must be from 1 to 20, got 21"),
        (
            "profiles.yaml",
            "profiles[1] 'bilingual'.skills",
            "spanish: level must be a whole number from 1 to 10, got 0",
        ),
        (
            "profiles.yaml",
            "profiles[2] 'sales-and-support'",
            "sms_capacity must be a whole number, got a string",
        ),
        (
            "profiles.yaml",
            "profiles[2] 'sales-and-support'",
            "queues must be a list, got a mapping",
        ),
        ("profiles.yaml", "profiles[3]", "name is required"),
    ]


def test_users_must_name_a_profile_of_profiles_yaml(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        people="""\
        users:
          - {username: alice, send_alerts: true, routing_profile: bilingual}
          - {username: bob, routing_profile: nobody}
          - {username: carol, routing_profile: 7}
        workgroups: [{name: Support, members: [alice, bob]}]
        """,
        profiles="profiles: [{name: bilingual, queues: [{workgroup: Support, priority: 1}]}]\n",
        numbers=NO_NUMBERS,
        inbound_routes=DEFAULT_ONLY,
    )

    assert problems_of(folder) == [
        ("people.yaml", "users[2] 'carol'", "routing_profile must be a string, got a number"),
        ("people.yaml", "users[1] 'bob'", "routing_profile 'nobody' is not in profiles.yaml"),
    ]
    (folder / "profiles.yaml").unlink()
    assert problems_of(folder)[:2] == [
        ("people.yaml", "users[2] 'carol'", "routing_profile must be a string, got a number"),
        ("people.yaml", "users[0] 'alice'", "routing_profile 'bilingual' is not in profiles.yaml"),
    ]


def test_a_broken_profiles_file_does_not_cascade_into_reference_problems(tmp_path: Path) -> None:
    folder = demo_folder(tmp_path, profiles="profiles: [\n")

    assert [(file, where) for file, where, _ in problems_of(folder)] == [
        ("profiles.yaml", "line 2, column 1")
    ]
    (folder / "profiles.yaml").write_text("- name: bilingual\n")
    assert problems_of(folder) == [
        ("profiles.yaml", "top level", "expected a mapping (key: value), got a list")
    ]


def test_profile_queues_are_sorted_by_priority_then_workgroup(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        profiles="""\
        profiles:
          - name: everything
            skills: {spanish: 3, billing: 2}
            queues:
              - {workgroup: Support, priority: 2, delay_s: 30}
              - {workgroup: Spanish, priority: 1}
              - {workgroup: Sales, priority: 2}
          - name: bilingual
          - name: sales-and-support
        """,
    )

    document = load(folder)

    assert [profile.name for profile in document.profiles] == [
        "bilingual",
        "everything",
        "sales-and-support",
    ]
    assert document.profiles[1] == RoutingProfileSpec(
        "everything",
        3,
        {"billing": 2, "spanish": 3},
        (
            ProfileQueueSpec("Spanish", 1),
            ProfileQueueSpec("Sales", 2),
            ProfileQueueSpec("Support", 2, 30),
        ),
    )
    assert list(document.profiles[1].skills) == ["billing", "spanish"]
    assert document.profiles[0].queues == ()
