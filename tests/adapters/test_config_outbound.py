"""The outbound part of a configuration folder: outbound_routes.yaml, an account's `sending:`
settings and the organisation's `keyword_replies`, read, checked and written back."""

from __future__ import annotations

from pathlib import Path

from server.adapters.config_document import OutboundRouteSpec, SendingSpec, credential_variable
from server.adapters.config_writer import write_config_folder
from tests.adapters.test_config_files import demo_folder, load, problems_of

BROKERS = """\
accounts:
  - public_id: demo-sandbox
    broker: sandbox
    credentials: {webhook_key: k}
    sending:
      api_url: https://sandbox.example/api
      timeout_s: 5
      long_text: truncate
      max_parts: 3
      send_rate_per_s: 2.5
      proxy: {url: 'http://proxy.example:3128', username: parley, password: '${PROXY_PASSWORD}'}
"""
NUMBERS = "numbers: [{number: +1 920 555 0100, account: demo-sandbox, workgroup: Support}]\n"


def test_routes_sending_settings_and_keyword_replies_are_read(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        brokers=BROKERS,
        numbers=NUMBERS,
        outbound_routes="""\
        routes:
          - name: north-america
            pattern: '^\\+1(\\d{10})$'
            formatted_number: '1$1'
            account: demo-sandbox
            classifications: [toll_free, local]
            users: [bob, alice]
          - {name: abroad, pattern: '.', account: demo-sandbox, classifications: [international]}
        """,
        organisation="""\
        slug: demo
        name: Demo Co
        provider: {slug: demo-provider, name: Demo Provider}
        keyword_replies: {help: '{organisation} help: call 920 555 0100', stop: ''}
        """,
    )

    document = load(folder, {"PROXY_PASSWORD": "s3cret"})

    assert document.outbound_routes == (
        OutboundRouteSpec(
            name="north-america",
            pattern=r"^\+1(\d{10})$",
            formatted_number="1$1",
            account="demo-sandbox",
            classifications=("local", "toll_free"),
            users=("alice", "bob"),
        ),
        OutboundRouteSpec(
            name="abroad",
            pattern=".",
            formatted_number="$0",
            account="demo-sandbox",
            classifications=("international",),
        ),
    )
    [account] = document.accounts
    assert account.sending == SendingSpec(
        api_url="https://sandbox.example/api",
        timeout_s=5.0,
        long_text="truncate",
        max_parts=3,
        send_rate_per_s=2.5,
        proxy_url="http://proxy.example:3128",
        proxy_username="parley",
        proxy_password="s3cret",
    )
    replies = document.organisation.keyword_replies
    assert replies["help"] == "Demo Co help: call 920 555 0100"
    assert replies["stop"] == ""  # sends none
    assert replies["start"].startswith("Demo Co: you are subscribed again")


def test_outbound_problems_are_each_reported(tmp_path: Path) -> None:
    folder = demo_folder(
        tmp_path,
        brokers="""\
        accounts:
          - public_id: demo-sandbox
            broker: sandbox
            credentials: {webhook_key: k}
            sending:
              api_url: ftp://nowhere
              timeout_s: 0
              long_text: wrap
              max_parts: 31
              send_rate_per_s: yes
              proxy: {url: 'http://proxy.example', username: parley}
        """,
        numbers=NUMBERS,
        outbound_routes="""\
        routes:
          - {name: a, pattern: '(', account: demo-sandbox, classifications: [local]}
          - {name: b, pattern: 'x', formatted_number: '$2', account: demo-sandbox,
             classifications: [local]}
          - {name: c, pattern: 'x', account: elsewhere, classifications: [mobile]}
          - {name: d, pattern: 'x', account: demo-sandbox, classifications: [],
             users: [zed], workgroups: [Nobody]}
          - {name: a, pattern: 'x', account: demo-sandbox, classifications: [local]}
        """,
    )

    where = "accounts[0] 'demo-sandbox'.sending"
    assert problems_of(folder) == [
        ("brokers.yaml", where, "api_url 'ftp://nowhere' must be an http:// or https:// address"),
        ("brokers.yaml", where, "timeout_s must be from 1 to 600, got 0"),
        ("brokers.yaml", where, "long_text must be one of: split, truncate"),
        ("brokers.yaml", where, "max_parts must be from 1 to 30, got 31"),
        ("brokers.yaml", where, "send_rate_per_s must be a number, got true/false"),
        ("brokers.yaml", f"{where}.proxy", "username and password go together"),
        (
            "outbound_routes.yaml",
            "routes[0] 'a'",
            "pattern does not compile: missing ), unterminated subpattern at position 0",
        ),
        (
            "outbound_routes.yaml",
            "routes[1] 'b'",
            "formatted_number uses $2 but the pattern has 0 group(s)",
        ),
        ("outbound_routes.yaml", "routes[2] 'c'", "account 'elsewhere' is not in brokers.yaml"),
        (
            "outbound_routes.yaml",
            "routes[2] 'c'",
            "classifications must list some of: local, long_distance, international, toll_free",
        ),
        (
            "outbound_routes.yaml",
            "routes[3] 'd'",
            "classifications must name at least one of: "
            "local, long_distance, international, toll_free",
        ),
        ("outbound_routes.yaml", "routes[3] 'd'", "users: 'zed' is not in people.yaml"),
        ("outbound_routes.yaml", "routes[3] 'd'", "workgroups: 'Nobody' is not in people.yaml"),
        ("outbound_routes.yaml", "routes[4] 'a'", "route 'a' is listed twice"),
    ]


def test_sending_settings_are_written_back_with_the_proxy_password_as_a_placeholder(
    tmp_path: Path,
) -> None:
    folder = demo_folder(tmp_path, brokers=BROKERS, numbers=NUMBERS)
    environ = {"PROXY_PASSWORD": "s3cret"}
    document = load(folder, environ)

    write_config_folder(document, tmp_path / "out")

    written = (tmp_path / "out" / "brokers.yaml").read_text()
    assert "s3cret" not in written
    variable = credential_variable(public_id="demo-sandbox", field="proxy_password")
    assert "${" + variable + "}" in written
    again = load(
        tmp_path / "out",
        {
            variable: "s3cret",
            credential_variable(public_id="demo-sandbox", field="webhook_key"): "k",
        },
    )
    assert again == document
