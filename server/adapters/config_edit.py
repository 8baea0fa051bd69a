"""Editing an organisation's configuration in the store: the admin API's way to change it.

An edit never writes rows of its own. `ConfigEditor.read` reads the organisation back as its
configuration files (`config_export.read_organisation_document`, then
`config_writer.document_files`: plain data, credentials as `${PARLEY_...}` placeholders, with
the stored values kept aside to fill them). `ConfigEditor.edit` lets the caller change those
files, checks the result with `config_files.load_config_folder` - the check `parley config
apply` makes - and applies it with `config_apply.apply_document` in one transaction, together
with the caller's own writes (a password, a token), only if the organisation is still at the
revision it was read at. So a change from the admin pages and one from files can never
disagree, and every change is audited by the apply. `ConfigEditor.check_texts` and
`ConfigEditor.apply_texts` do the same for whole files edited as YAML text.

Placeholders are filled only from the organisation's own stored credentials, never from the
server's environment, and only where a credential goes, so a file edited over HTTP cannot read
the server's secrets nor show a stored credential; a route to a handler (server code) not already
configured is refused: the operator adds one with `parley config apply`.

    ConfigError (config_document)
    ├── ConfigInvalid          -- the edited files are wrong: `problems`
    ├── ConfigConflict         -- (config_apply) valid, but the store refuses them
    │   └── StaleRevision      -- the organisation changed since it was read
    └── EditRefused            -- the edit itself makes no sense (no such user, one exists...)
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
import yaml

from server.adapters.config_document import (
    CONFIG_FILES,
    ConfigError,
    ConfigInvalid,
    ConfigProblem,
    OrganisationDocument,
    credential_variable,
)
from server.adapters.config_files import load_config_folder
from server.adapters.config_writer import document_files
from server.adapters.persistence.accounts import organisation_slug
from server.adapters.persistence.config_apply import ApplyReport, apply_document
from server.adapters.persistence.config_export import read_organisation_document

if TYPE_CHECKING:
    from server.adapters.brokers.registry import BrokerWire

__all__ = [
    "ConfigEditor",
    "ConfigFiles",
    "ConfigSnapshot",
    "EditRefused",
    "dump_file",
]

T = TypeVar("T")
ConfigFiles = dict[str, Any]
"""A configuration folder as plain data: file name → the file's YAML content."""

_MAX_FILE_CHARS = 512 * 1024


class EditRefused(ConfigError):
    """An edit that cannot be made as asked; nothing was written.

    `status` is the HTTP status that says so (404 no such item, 409 it exists or is in use,
    422 a bad value), `code` a stable word, `field` the request field at fault (or None).
    """

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field


@dataclass
class ConfigSnapshot:
    """An organisation's configuration as read at `revision`: its files, and the stored
    credentials (`environ`, variable → value) that fill their `${PARLEY_...}` placeholders."""

    organisation_id: int
    slug: str
    revision: int
    files: ConfigFiles
    environ: dict[str, str] = field(default_factory=dict, repr=False)

    def texts(self) -> dict[str, str]:
        """The files as YAML text, as `parley config export` writes them."""
        return {name: dump_file(content) for name, content in self.files.items()}


def dump_file(content: object) -> str:
    """One configuration file's content as YAML text."""
    return yaml.safe_dump(content, sort_keys=False, allow_unicode=True, width=100)


def _credentials(document: OrganisationDocument) -> dict[str, str]:
    """The value of every `${PARLEY_...}` placeholder that `document_files` writes."""
    environ: dict[str, str] = {}
    for account in document.accounts:
        for key, value in account.credentials.items():
            environ[credential_variable(public_id=account.public_id, field=key)] = value
        if account.sending.proxy_password is not None:
            variable = credential_variable(public_id=account.public_id, field="proxy_password")
            environ[variable] = account.sending.proxy_password
    return environ


# Where a `${PARLEY_...}` placeholder may stand: an account's credential or its proxy password.
_CREDENTIAL_PLACE = re.compile(r"accounts\[\d+\]\.(?:credentials\.[^.]+|sending\.proxy\.password)")


def _strings(node: object, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a YAML value, with its place (`routes[2].destination.handler`)."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{where}[{index}]")


def _handlers(inbound_routes: object) -> Iterator[str]:
    """The handlers an `inbound_routes.yaml` content routes to."""
    for where, value in _strings(inbound_routes):
        if where.endswith("destination.handler"):
            yield value


def _guard(texts: Mapping[str, str], *, known_handlers: set[str]) -> list[ConfigProblem]:
    """The placeholders out of place and the new handlers in `texts` (see `check_texts`);
    a file that is not YAML is left to the check, which says where."""
    problems: list[ConfigProblem] = []
    for name, text in texts.items():
        try:
            root = yaml.safe_load(text)
        except yaml.YAMLError:
            continue
        for where, value in _strings(root):
            credential = name == "brokers.yaml" and _CREDENTIAL_PLACE.fullmatch(where)
            if "${" in value and not credential:
                problems.append(
                    ConfigProblem(
                        name,
                        where or "top level",
                        "${...} placeholders stand only for an account's credentials here",
                    )
                )
        if name == "inbound_routes.yaml":
            problems += [
                ConfigProblem(
                    name,
                    "routes",
                    f"handler {handler!r}: a route to a new handler runs server code; the "
                    "operator adds it with `parley config apply`",
                )
                for handler in sorted(set(_handlers(root)) - known_handlers)
            ]
    return problems


def _revision(connection: sa.Connection, organisation_id: int) -> int:
    value = connection.execute(
        sa.text("SELECT config_revision FROM organisation WHERE id = :id"), {"id": organisation_id}
    ).scalar_one()
    return int(value)


class ConfigEditor:
    """Reads, checks and applies one server's organisations' configuration (see the module)."""

    def __init__(self, engine: sa.Engine, *, brokers: Mapping[str, BrokerWire] | None) -> None:
        self._engine = engine
        self._brokers = brokers

    def read(self, *, organisation_id: int) -> ConfigSnapshot:
        """The organisation's configuration now. Blocking."""
        with self._engine.connect() as connection:
            slug = organisation_slug(connection, organisation_id=organisation_id)
            revision = _revision(connection, organisation_id)
            document = read_organisation_document(connection, organisation_slug=slug)
        return ConfigSnapshot(
            organisation_id=organisation_id,
            slug=slug,
            revision=revision,
            files=copy.deepcopy(document_files(document)),
            environ=_credentials(document),
        )

    def check_texts(
        self, texts: Mapping[str, str], *, snapshot: ConfigSnapshot
    ) -> OrganisationDocument:
        """Check a folder given as file name → YAML text, as files of `snapshot`'s organisation
        (its stored credentials fill the placeholders); return its document.

        Raises `ConfigInvalid` with every problem. Besides the check of `parley config apply`,
        refused here: a file of another name, a document of another organisation, a
        placeholder anywhere but at a credential (it would show the credential's value), and a
        route to a handler the stored configuration does not name (a handler is server code:
        the operator adds one with `parley config apply`). Blocking."""
        problems = [
            ConfigProblem(
                name, "top level", f"unknown file; expected some of: {', '.join(CONFIG_FILES)}"
            )
            for name in texts
            if name not in CONFIG_FILES
        ]
        problems += [
            ConfigProblem(name, "top level", f"is longer than {_MAX_FILE_CHARS} characters")
            for name, text in texts.items()
            if len(text) > _MAX_FILE_CHARS
        ]
        if not problems:
            known = set(_handlers(snapshot.files.get("inbound_routes.yaml")))
            problems = _guard(texts, known_handlers=known)
        if problems:
            raise ConfigInvalid(problems)
        with tempfile.TemporaryDirectory(prefix="parley-config-") as folder:
            for name, text in texts.items():
                (Path(folder) / name).write_text(text, encoding="utf-8")
            document = load_config_folder(
                Path(folder), environ=snapshot.environ, brokers=self._brokers
            )
        if document.organisation.slug != snapshot.slug:
            raise ConfigInvalid(
                [
                    ConfigProblem(
                        "organisation.yaml",
                        "top level",
                        f"slug must stay {snapshot.slug!r}: these are that organisation's files",
                    )
                ]
            )
        return document

    def problems(self, snapshot: ConfigSnapshot) -> tuple[ConfigProblem, ...]:
        """What the check finds wrong in the stored configuration (nothing, normally)."""
        try:
            self.check_texts(snapshot.texts(), snapshot=snapshot)
        except ConfigInvalid as invalid:
            return invalid.problems
        return ()

    def _apply(
        self,
        snapshot: ConfigSnapshot,
        document: OrganisationDocument,
        *,
        actor: str,
        now: datetime,
        also: Callable[[sa.Connection, ApplyReport], T] | None,
    ) -> tuple[ApplyReport, T | None]:
        with self._engine.begin() as connection:
            report = apply_document(
                connection, document, actor=actor, now=now, expected_revision=snapshot.revision
            )
            extra = None if also is None else also(connection, report)
        return report, extra

    def edit(
        self,
        *,
        organisation_id: int,
        change: Callable[[ConfigSnapshot], None],
        actor: str,
        now: datetime,
        expected_revision: int | None = None,
        also: Callable[[sa.Connection, ApplyReport], T] | None = None,
    ) -> tuple[ApplyReport, T | None]:
        """Read the organisation, let `change` edit the snapshot's files (and add credentials to
        its `environ`), check and apply them; in the same transaction run `also(connection,
        report)`, whose exception undoes the apply too. Blocking.

        Returns the apply's report and what `also` returned. Raises `StaleRevision` when
        `expected_revision` is not the current one (or the organisation moves on meanwhile),
        `EditRefused` from `change`, `ConfigInvalid` or `ConfigConflict`; nothing is written
        then.
        """
        snapshot = self.read(organisation_id=organisation_id)
        if expected_revision is not None and expected_revision != snapshot.revision:
            snapshot.revision = expected_revision  # the apply refuses it, saying why
        change(snapshot)
        document = self.check_texts(snapshot.texts(), snapshot=snapshot)
        return self._apply(snapshot, document, actor=actor, now=now, also=also)

    def apply_texts(
        self,
        *,
        organisation_id: int,
        texts: Mapping[str, str],
        actor: str,
        now: datetime,
        expected_revision: int | None = None,
    ) -> ApplyReport:
        """Check whole files (name → YAML text, as `read(...).texts()` gives them) and apply
        them: `parley config apply` from a browser. Raises as `edit`. Blocking."""
        snapshot = self.read(organisation_id=organisation_id)
        if expected_revision is not None:
            snapshot.revision = expected_revision
        document = self.check_texts(texts, snapshot=snapshot)
        report, _ = self._apply(snapshot, document, actor=actor, now=now, also=None)
        return report
