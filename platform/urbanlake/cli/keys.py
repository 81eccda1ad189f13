"""``urbanlake keys create|list|revoke``: API keys for partners and internal users."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from urbanlake.cli.app import app, console, fail, settings
from urbanlake.core.errors import UrbanLakeError

keys_app = typer.Typer(
    help="API keys for partners and internal users: create (shown once), list, revoke.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def key_store() -> Any:
    from urbanlake.catalog.keys import KeyStore

    try:
        return KeyStore(settings())
    except UrbanLakeError as exc:
        fail(str(exc))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="who the key is for, e.g. transit-app-vendor")],
    tier: Annotated[str, typer.Option(help="partner or internal")],
    expires: Annotated[
        str | None, typer.Option(help="lifetime, e.g. 90d or 12h (default: never expires)")
    ] = None,
) -> None:
    """Make a key and print it once: only a salted hash of it is kept."""
    from urbanlake.core.spec import parse_duration

    lifetime = None
    if expires is not None:
        try:
            lifetime = parse_duration(expires)
        except ValueError as exc:
            fail(f"--expires: {exc}")
    store = key_store()
    try:
        key = store.create(name, tier, lifetime)
    except UrbanLakeError as exc:
        fail(str(exc))
    finally:
        store.close()
    until = f", expires {datetime.now(UTC) + lifetime:%Y-%m-%d %H:%M} UTC" if lifetime else ""
    console.print(f"Key [bold]{name}[/bold] ({tier}{until}):", highlight=False)
    console.print(key, highlight=False, markup=False, soft_wrap=True)
    console.print(
        "Keep it now: it is not stored and will not be shown again. Send it as "
        "'X-API-Key: <key>' or 'Authorization: Bearer <key>'.",
        highlight=False,
    )


@keys_app.command("list")
def keys_list() -> None:
    """Every key: tier, created, expires, last used, requests, revoked (never the key)."""
    store = key_store()
    try:
        found = store.list_keys()
    except UrbanLakeError as exc:
        fail(str(exc))
    finally:
        store.close()

    def when(moment: datetime | None) -> str:
        return f"{moment:%Y-%m-%d %H:%M}" if moment else "-"

    table = Table(title="API keys")
    for column in ("name", "tier", "created", "expires", "last used", "requests", "revoked"):
        table.add_column(column, justify="right" if column == "requests" else "left")
    for key in found:
        table.add_row(key.name, key.tier, when(key.created), when(key.expires),
                      when(key.last_used), f"{key.requests:,}", when(key.revoked))  # fmt: skip
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(name: Annotated[str, typer.Argument(help="the key's name")]) -> None:
    """Revoke a key; API workers refuse it within access.key_cache_seconds."""
    store = key_store()
    try:
        store.revoke(name)
    except UrbanLakeError as exc:
        fail(str(exc))
    finally:
        store.close()
    wait = settings().access.key_cache_seconds
    console.print(
        f"Revoked [bold]{name}[/bold]; running API workers refuse it within {wait:g} s.",
        highlight=False,
    )
