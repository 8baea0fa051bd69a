"""Writing a configuration folder: a configuration document written back as YAML files.

`write_config_folder` writes what `server.adapters.config_files.load_config_folder` reads, with
every broker credential replaced by a `${PARLEY_...}` placeholder (`credential_variable`), so a
written folder holds no secret. `server.adapters.persistence.config_export.export_config` uses it
to export an organisation from the store.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from server.adapters.config_document import (
    ACCOUNT_FLAGS,
    WORKGROUP_NUMBERS,
    BrokerAccountSpec,
    Destination,
    DestinationKind,
    OrganisationDocument,
    RoutingProfileSpec,
    SendingSpec,
    UserSpec,
    WorkgroupSpec,
    credential_variable,
)

__all__ = ["document_files", "write_config_folder"]

_HEADER = (
    "# Written by `parley config export`. Credentials are read from the environment:\n"
    "# set each ${PARLEY_...} variable before `parley config apply`.\n"
)


def _destination_node(destination: Destination) -> dict[str, object]:
    if destination.kind is DestinationKind.ASSIGNED:
        return {"assigned": True}
    return {destination.kind.value: destination.target}


def _user_node(user: UserSpec) -> dict[str, object]:
    node: dict[str, object] = {
        "username": user.username,
        "display_name": user.display_name,
        "role": user.role,
        "send_alerts": user.send_alerts,
    }
    if user.routing_profile is not None:
        node["routing_profile"] = user.routing_profile
    if user.skills:
        node["skills"] = dict(user.skills)
    return node


def _workgroup_node(workgroup: WorkgroupSpec) -> dict[str, object]:
    node: dict[str, object] = {
        "name": workgroup.name,
        "members": list(workgroup.members),
        "strategy": workgroup.strategy,
        **{key: getattr(workgroup, key) for key in WORKGROUP_NUMBERS},
    }
    if workgroup.required_skills:
        node["required_skills"] = dict(workgroup.required_skills)
    if workgroup.escalation:
        node["escalation"] = [
            {"after_s": step.after_s, "overflow_to": step.overflow_to}
            if step.overflow_to is not None
            else {"after_s": step.after_s, "drop_skills": True}
            for step in workgroup.escalation
        ]
    node.update(workgroup.care)  # timeouts, notices, max_wait: as they were written
    return node


def _profile_node(profile: RoutingProfileSpec) -> dict[str, object]:
    node: dict[str, object] = {"name": profile.name, "sms_capacity": profile.sms_capacity}
    if profile.skills:
        node["skills"] = dict(profile.skills)
    node["queues"] = [
        {"workgroup": queue.workgroup, "priority": queue.priority, "delay_s": queue.delay_s}
        for queue in profile.queues
    ]
    return node


def document_files(document: OrganisationDocument) -> dict[str, dict[str, object]]:
    """Return each file's content (plain data for `yaml.safe_dump`), credentials replaced by
    `${PARLEY_...}` placeholders (`credential_variable`)."""
    organisation = document.organisation
    accounts = []
    for account in document.accounts:
        accounts.append(
            {
                "public_id": account.public_id,
                "broker": account.broker,
                "name": account.name,
                "region": account.region,
                **{key: getattr(account, key) for key in ACCOUNT_FLAGS},
                "credentials": {
                    key: "${" + credential_variable(public_id=account.public_id, field=key) + "}"
                    for key in sorted(account.credentials)
                },
            }
        )
        sending = _sending_node(account)
        if sending:
            accounts[-1]["sending"] = sending
    numbers = []
    for number in document.numbers:
        entry: dict[str, object] = {
            "number": number.e164,
            "account": number.account,
            "friendly_name": number.friendly_name,
        }
        if number.workgroup is not None:
            entry["workgroup"] = number.workgroup
        if number.user is not None:
            entry["user"] = number.user
        if number.mms_enabled is not None:
            entry["mms_enabled"] = number.mms_enabled
        if number.user_can_block is not None:
            entry["user_can_block"] = number.user_can_block
        numbers.append(entry)
    return {
        "organisation.yaml": {
            "slug": organisation.slug,
            "name": organisation.name,
            "provider": {"slug": organisation.provider.slug, "name": organisation.provider.name},
            "country": organisation.country,
            "keyword_replies": dict(organisation.keyword_replies),
            **organisation.care,  # timeouts, notices, purge_after_days
        },
        "people.yaml": {
            "users": [_user_node(user) for user in document.users],
            "workgroups": [_workgroup_node(workgroup) for workgroup in document.workgroups],
        },
        "profiles.yaml": {"profiles": [_profile_node(profile) for profile in document.profiles]},
        "brokers.yaml": {"accounts": accounts},
        "numbers.yaml": {"numbers": numbers},
        "inbound_routes.yaml": {
            "routes": [
                {
                    "name": route.name,
                    "type": route.field.value,
                    "pattern": route.pattern,
                    "destination": _destination_node(route.destination),
                }
                for route in document.routes
            ],
            "default": {"destination": _destination_node(document.default_destination)},
        },
        "outbound_routes.yaml": {
            "routes": [
                {
                    "name": route.name,
                    "pattern": route.pattern,
                    "formatted_number": route.formatted_number,
                    "account": route.account,
                    "classifications": list(route.classifications),
                    "users": list(route.users),
                    "workgroups": list(route.workgroups),
                }
                for route in document.outbound_routes
            ]
        },
    }


def _sending_node(account: BrokerAccountSpec) -> dict[str, object]:
    """An account's `sending:` settings that differ from the defaults; the proxy password as a
    `${PARLEY_...}` placeholder."""
    sending, defaults = account.sending, SendingSpec()
    node: dict[str, object] = {
        key: getattr(sending, key)
        for key in ("api_url", "timeout_s", "long_text", "max_parts", "consolidate")
        if getattr(sending, key) != getattr(defaults, key)
    }
    if sending.send_rate_per_s is not None:
        node["send_rate_per_s"] = sending.send_rate_per_s
    if sending.proxy_url is not None:
        proxy: dict[str, object] = {"url": sending.proxy_url}
        if sending.proxy_username is not None:
            variable = credential_variable(public_id=account.public_id, field="proxy_password")
            proxy.update(username=sending.proxy_username, password="${" + variable + "}")
        node["proxy"] = proxy
    return node


def write_config_folder(document: OrganisationDocument, folder: Path) -> None:
    """Write `document` as the six files in `folder` (created if needed; files replaced).

    Credentials are never written: each becomes `${PARLEY_<PUBLIC_ID>_<FIELD>}` (see
    `credential_variable`), so `load_config_folder` reads them back from the environment.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in document_files(document).items():
        text = yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)
        (folder / name).write_text(_HEADER + text, encoding="utf-8")
