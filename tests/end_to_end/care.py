"""`configure_care`: give a running stack's organisation customer-care settings, written into its
configuration folder as an administrator would (organisation.yaml, people.yaml), read back with
the real reader (so they are checked) and applied. The server follows at the next event it
handles."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import yaml

from server.adapters.config_files import load_config_folder
from server.adapters.persistence.config_apply import apply_config
from tests.end_to_end.conftest import Stack
from tests.end_to_end.organisations import ACME, Organisation

__all__ = ["configure_care"]


def configure_care(
    stack: Stack,
    *,
    organisation: Mapping[str, Any] | None = None,
    workgroups: Mapping[str, Mapping[str, Any]] | None = None,
    org: Organisation = ACME,
) -> None:
    """Set `organisation` (keys of organisation.yaml: timeouts, notices, purge_after_days) and
    each named workgroup's care (timeouts, notices, max_wait); what is not given is removed."""
    source = stack.folder / "config" / org.slug
    folder = stack.folder / "config-care" / org.slug
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(source, folder)
    organisation_file = folder / "organisation.yaml"
    document = yaml.safe_load(organisation_file.read_text())
    for key in ("timeouts", "notices", "purge_after_days"):
        document.pop(key, None)
    document.update(organisation or {})
    organisation_file.write_text(yaml.safe_dump(document, sort_keys=False))
    people_file = folder / "people.yaml"
    people = yaml.safe_load(people_file.read_text())
    for workgroup in people["workgroups"]:
        for key in ("timeouts", "notices", "max_wait"):
            workgroup.pop(key, None)
        workgroup.update((workgroups or {}).get(workgroup["name"], {}))
    people_file.write_text(yaml.safe_dump(people, sort_keys=False))
    apply_config(stack.engine, load_config_folder(folder), actor="test", now=datetime.now(UTC))
