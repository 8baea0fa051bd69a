"""The admin routes for broker accounts and their numbers (`brokers.yaml`, `numbers.yaml`).

Each change goes through `AdminApi.edit` (server/adapters/http_api/admin_api.py) like every
admin change. An account's credentials are written to the files as `${PARLEY_...}`
placeholders, their values kept beside them for the check and the apply, and never shown back
in full: a listing shows each credential's last four characters at most. A number is assigned to
exactly one of a workgroup or a user; naming one in a change drops the other.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.adapters.config_document import ACCOUNT_FLAGS, credential_variable
from server.adapters.config_edit import ConfigSnapshot, EditRefused
from server.adapters.http_api.admin_api import (
    READ,
    WRITE,
    AdminApi,
    report_json,
    revision_parameter,
    set_fields,
)
from server.adapters.persistence.accounts import Principal
from server.core.phone_numbers import ImpossibleNumber, to_e164

__all__ = ["number_routes"]

_ACCOUNT_FIELDS = ("broker", "name", "region", *ACCOUNT_FLAGS, "sending")
_NUMBER_FIELDS = ("friendly_name", "workgroup", "user", "mms_enabled", "user_can_block")
_SHOWN_CHARACTERS = 4


def _mask(value: str) -> str:
    """A credential as a listing shows it: its last four characters, only when it has 12+."""
    if len(value) >= 3 * _SHOWN_CHARACTERS:
        return "…" + value[-_SHOWN_CHARACTERS:]
    return "…"


def _accounts(snapshot: ConfigSnapshot) -> list[dict[str, Any]]:
    accounts: list[dict[str, Any]] = snapshot.files["brokers.yaml"]["accounts"]
    return accounts


def _numbers(snapshot: ConfigSnapshot) -> list[dict[str, Any]]:
    numbers: list[dict[str, Any]] = snapshot.files["numbers.yaml"]["numbers"]
    return numbers


def _account(snapshot: ConfigSnapshot, public_id: str) -> dict[str, Any]:
    for node in _accounts(snapshot):
        if node["public_id"] == public_id:
            return node
    raise EditRefused(404, "not_found", f"no broker account {public_id!r}")


def _number(snapshot: ConfigSnapshot, account: str, number: str) -> dict[str, Any]:
    for node in _numbers(snapshot):
        if node["account"] == account and node["number"] == number:
            return node
    raise EditRefused(404, "not_found", f"no number {number} on the account {account!r}")


def _account_json(snapshot: ConfigSnapshot, node: dict[str, Any]) -> dict[str, Any]:
    public_id = node["public_id"]
    credentials = {
        key: _mask(snapshot.environ.get(credential_variable(public_id=public_id, field=key), ""))
        for key in node.get("credentials", {})
    }
    return {
        **{key: value for key, value in node.items() if key != "credentials"},
        "credentials": credentials,
        "webhook_path": f"/webhooks/{node['broker']}/{public_id}",
        "numbers": [n["number"] for n in _numbers(snapshot) if n["account"] == public_id],
    }


def _set_credentials(
    snapshot: ConfigSnapshot, node: dict[str, Any], credentials: object, *, merge: bool
) -> None:
    """Put `credentials` (name → value; null removes one when merging) into the account's
    node as placeholders and their values into the snapshot's `environ`."""
    if not isinstance(credentials, dict) or not all(
        isinstance(key, str) and (isinstance(value, str) or (merge and value is None))
        for key, value in credentials.items()
    ):
        raise EditRefused(
            422,
            "invalid_body",
            "credentials must map names to strings" + (" (null removes one)" if merge else ""),
            field="credentials",
        )
    public_id = node["public_id"]
    placeholders: dict[str, str] = dict(node.get("credentials", {})) if merge else {}
    for key, value in credentials.items():
        variable = credential_variable(public_id=public_id, field=key)
        if value is None:
            placeholders.pop(key, None)
            snapshot.environ.pop(variable, None)
        else:
            placeholders[key] = "${" + variable + "}"
            snapshot.environ[variable] = value
    node["credentials"] = placeholders


class NumbersApi:
    """Broker accounts and numbers (see the module docstring)."""

    def __init__(self, api: AdminApi) -> None:
        self.api = api

    # --- accounts -------------------------------------------------------------------------------

    async def list_accounts(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.api.snapshot(principal)
        accounts = [_account_json(snapshot, node) for node in _accounts(snapshot)]
        return JSONResponse({"revision": snapshot.revision, "accounts": accounts})

    async def _account_answer(
        self, principal: Principal, public_id: str, *, revision: int, status: int = 200
    ) -> Response:
        snapshot = await self.api.snapshot(principal)
        account = _account_json(snapshot, _account(snapshot, public_id))
        return JSONResponse({"revision": revision, "account": account}, status_code=status)

    async def create_account(self, request: Request, principal: Principal) -> Response:
        body = await self.api.body(
            request,
            allowed=("public_id", *_ACCOUNT_FIELDS, "credentials", "revision"),
            required=("public_id", "broker"),
        )
        public_id = body["public_id"]
        if not isinstance(public_id, str):
            raise EditRefused(422, "invalid_body", "public_id must be a string", field="public_id")

        def change(snapshot: ConfigSnapshot) -> None:
            if any(node["public_id"] == public_id for node in _accounts(snapshot)):
                raise EditRefused(
                    409, "exists", f"there is an account {public_id!r}", field="public_id"
                )
            node: dict[str, Any] = {"public_id": public_id}
            set_fields(node, body, _ACCOUNT_FIELDS)
            _set_credentials(snapshot, node, body.get("credentials", {}), merge=False)
            _accounts(snapshot).append(node)

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._account_answer(
            principal, public_id, revision=report.revision, status=201
        )

    async def change_account(self, request: Request, principal: Principal) -> Response:
        public_id = request.path_params["public_id"]
        body = await self.api.body(request, allowed=(*_ACCOUNT_FIELDS, "credentials", "revision"))

        def change(snapshot: ConfigSnapshot) -> None:
            node = _account(snapshot, public_id)
            set_fields(node, body, _ACCOUNT_FIELDS)
            if "credentials" in body:
                _set_credentials(snapshot, node, body["credentials"], merge=True)

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._account_answer(principal, public_id, revision=report.revision)

    async def remove_account(self, request: Request, principal: Principal) -> Response:
        public_id = request.path_params["public_id"]

        def change(snapshot: ConfigSnapshot) -> None:
            node = _account(snapshot, public_id)
            numbers = [n["number"] for n in _numbers(snapshot) if n["account"] == public_id]
            if numbers:
                raise EditRefused(
                    409,
                    "in_use",
                    f"the account {public_id!r} has the number {numbers[0]}: remove its "
                    "numbers first",
                )
            _accounts(snapshot).remove(node)

        report, _ = await self.api.edit(principal, change, revision=revision_parameter(request))
        return JSONResponse(report_json(report))

    # --- numbers --------------------------------------------------------------------------------

    async def list_numbers(self, request: Request, principal: Principal) -> Response:
        snapshot = await self.api.snapshot(principal)
        return JSONResponse({"revision": snapshot.revision, "numbers": _numbers(snapshot)})

    async def create_number(self, request: Request, principal: Principal) -> Response:
        body = await self.api.body(
            request,
            allowed=("number", "account", *_NUMBER_FIELDS, "revision"),
            required=("number", "account"),
        )

        def change(snapshot: ConfigSnapshot) -> None:
            node: dict[str, Any] = {"number": body["number"], "account": body["account"]}
            set_fields(node, body, _NUMBER_FIELDS)
            _numbers(snapshot).append(node)

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._number_answer(principal, body, revision=report.revision, status=201)

    async def _number_answer(
        self, principal: Principal, body: dict[str, Any], *, revision: int, status: int = 200
    ) -> Response:
        """The number as stored now (its number in E.164, whatever form it was given in)."""
        snapshot = await self.api.snapshot(principal)
        country = snapshot.files["organisation.yaml"].get("country", "US")
        try:
            e164 = to_e164(body["number"], region=country)
        except ImpossibleNumber:
            e164 = str(body["number"])
        number = _number(snapshot, body["account"], e164)
        return JSONResponse({"revision": revision, "number": number}, status_code=status)

    async def change_number(self, request: Request, principal: Principal) -> Response:
        account, number = request.path_params["account"], request.path_params["number"]
        body = await self.api.body(request, allowed=(*_NUMBER_FIELDS, "revision"))

        def change(snapshot: ConfigSnapshot) -> None:
            node = _number(snapshot, account, number)
            # a number is assigned to one of a workgroup or a user: naming one drops the other
            if body.get("workgroup") is not None and "user" not in body:
                node.pop("user", None)
            if body.get("user") is not None and "workgroup" not in body:
                node.pop("workgroup", None)
            set_fields(node, body, _NUMBER_FIELDS)

        report, _ = await self.api.edit(principal, change, revision=body.get("revision"))
        return await self._number_answer(
            principal, {"number": number, "account": account}, revision=report.revision
        )

    async def remove_number(self, request: Request, principal: Principal) -> Response:
        account, number = request.path_params["account"], request.path_params["number"]

        def change(snapshot: ConfigSnapshot) -> None:
            _numbers(snapshot).remove(_number(snapshot, account, number))

        report, _ = await self.api.edit(principal, change, revision=revision_parameter(request))
        return JSONResponse(report_json(report))

    def routes(self) -> list[Route]:
        number_path = "/api/admin/numbers/{account}/{number}"
        return self.api.table(
            [
                ("GET", "/api/admin/accounts", self.list_accounts, READ),
                ("POST", "/api/admin/accounts", self.create_account, WRITE),
                ("PATCH", "/api/admin/accounts/{public_id}", self.change_account, WRITE),
                ("DELETE", "/api/admin/accounts/{public_id}", self.remove_account, WRITE),
                ("GET", "/api/admin/numbers", self.list_numbers, READ),
                ("POST", "/api/admin/numbers", self.create_number, WRITE),
                ("PATCH", number_path, self.change_number, WRITE),
                ("DELETE", number_path, self.remove_number, WRITE),
            ]
        )


def number_routes(api: AdminApi) -> list[Route]:
    """The broker accounts' and numbers' routes."""
    return NumbersApi(api).routes()
