"""`python -m services.gateway.admin`: manage accounts and API keys from a shell.

    accounts create [--friendly-name NAME]           prints the new SID and auth token
    accounts rotate-token AC…                        prints the new auth token
    keys create AC… [--friendly-name NAME] [--permission P ...]
                                                     prints the key SID and secret, once
    keys list AC…                                    the account's keys, without secrets
    keys revoke SK…                                  the key stops working everywhere

Gateway tooling: it writes the gateway's own collections (`accounts`, `api_keys`)
in the gateway's storage format, reading MONGODB_URL, MONGODB_DATABASE,
TASKROUTER_SECRET_KEY (which must match the gateways'), NATS_URL and
TASKROUTER_SUBJECT_PREFIX from the environment. After a change it broadcasts
credentials-changed so running gateways drop what they cached; when NATS cannot
be reached they catch up at their next periodic reload.

Output is JSON on stdout; refusals go to stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import nats
import nats.errors
from pymongo import UpdateOne

from services.gateway.accounts import Accounts
from services.gateway.api_keys import (
    create_api_key,
    credentials_changed_message,
    list_api_keys,
    revoke_api_key,
)
from shared.errors import NotFoundError, TaskRouterError
from shared.events import Event
from shared.settings import CommonSettings, load
from shared.sids import SidPrefix, is_sid, new_sid
from shared.storage import collections as c
from shared.storage.committer import Committer, Write
from shared.storage.mongo import open_client
from shared.subjects import Subjects


async def _quiet(error: Exception) -> None:
    """nats-py logs connection errors itself; the admin tool reports them once."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m services.gateway.admin",
        description="Manage TaskRouter accounts and API keys.",
    )
    groups = parser.add_subparsers(dest="group", required=True)

    accounts = groups.add_parser("accounts", help="accounts and their auth tokens")
    account_commands = accounts.add_subparsers(dest="command", required=True)
    create = account_commands.add_parser("create", help="create an account")
    create.add_argument("--friendly-name")
    rotate = account_commands.add_parser("rotate-token", help="issue a new auth token")
    rotate.add_argument("account_sid", metavar="AC…")

    keys = groups.add_parser("keys", help="API keys (SK…)")
    key_commands = keys.add_subparsers(dest="command", required=True)
    create_key = key_commands.add_parser(
        "create", help="create a key; prints its secret once"
    )
    create_key.add_argument("account_sid", metavar="AC…")
    create_key.add_argument("--friendly-name")
    create_key.add_argument(
        "--permission",
        action="append",
        dest="permissions",
        metavar="P",
        help="make a restricted key allowed to do P, e.g. "
        "/twilio/taskrouter/workspaces.tasks/create (repeat for more)",
    )
    list_keys = key_commands.add_parser("list", help="list an account's keys")
    list_keys.add_argument("account_sid", metavar="AC…")
    revoke = key_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("key_sid", metavar="SK…")
    return parser


class _Admin:
    """One command's connections: the store, a committer without events, NATS."""

    def __init__(self, settings: CommonSettings, out: TextIO, err: TextIO) -> None:
        self.settings = settings
        self.out, self.err = out, err
        self.client = open_client(settings.mongodb_url)
        self.db = self.client[settings.mongodb_database]
        self.committer = Committer(
            self.client, self.db, self._no_events, outbox="outbox_gateway"
        )
        self.accounts = Accounts(self.db, self.committer, settings.secret_key)

    @staticmethod
    async def _no_events(event: Event) -> None:
        raise AssertionError("the admin tool writes no events")

    def print(self, value: Any) -> None:
        print(json.dumps(value, indent=2, default=str), file=self.out)

    async def broadcast(
        self, *, account_sid: str | None = None, key_sid: str | None = None
    ) -> None:
        """Tell running gateways to drop cached credentials; warn when NATS is away."""
        subject = Subjects(self.settings.subject_prefix).credentials_changed()
        message = credentials_changed_message(account_sid=account_sid, key_sid=key_sid)
        try:
            connection = await asyncio.wait_for(
                nats.connect(
                    self.settings.nats_url.split(","),
                    connect_timeout=3,
                    # NOTE: 0 would mean "retry forever" to nats-py; one try is enough.
                    max_reconnect_attempts=1,
                    reconnect_time_wait=0.1,
                    error_cb=_quiet,
                ),
                timeout=5,
            )
            await connection.publish(subject, message)
            await connection.drain()
        except (OSError, TimeoutError, nats.errors.Error) as exc:
            print(
                f"warning: could not tell running gateways ({type(exc).__name__}); "
                "they pick the change up at their next periodic reload",
                file=self.err,
            )


async def _accounts_create(admin: _Admin, args: argparse.Namespace) -> None:
    account_sid, auth_token = new_sid(SidPrefix.ACCOUNT), secrets.token_hex(16)
    await admin.accounts.save(account_sid, auth_token)
    if args.friendly_name is not None:
        operation = UpdateOne(
            {"_id": account_sid}, {"$set": {"friendly_name": args.friendly_name}}
        )
        await admin.committer.commit([Write(c.ACCOUNTS, operation)])
    await admin.broadcast(account_sid=account_sid)
    admin.print(
        {
            "account_sid": account_sid,
            "auth_token": auth_token,
            "friendly_name": args.friendly_name,
        }
    )


async def _accounts_rotate_token(admin: _Admin, args: argparse.Namespace) -> None:
    account_sid = args.account_sid
    existing = await admin.db[c.ACCOUNTS].find_one(
        {"_id": account_sid}, {"bootstrap": 1}
    )
    if existing is None:
        raise NotFoundError("Account", account_sid)
    auth_token = secrets.token_hex(16)
    await admin.accounts.save(
        account_sid, auth_token, bootstrap=bool(existing.get("bootstrap"))
    )
    await admin.broadcast(account_sid=account_sid)
    admin.print({"account_sid": account_sid, "auth_token": auth_token})


async def _keys_create(admin: _Admin, args: argparse.Namespace) -> None:
    issued = await create_api_key(
        admin.db,
        admin.committer,
        admin.settings.secret_key,
        args.account_sid,
        friendly_name=args.friendly_name,
        permissions=args.permissions,
    )
    await admin.broadcast(key_sid=issued.sid)
    admin.print(
        {
            "sid": issued.sid,
            "secret": issued.secret,
            "account_sid": issued.account_sid,
            "friendly_name": issued.friendly_name,
            "permissions": list(issued.permissions)
            if issued.permissions is not None
            else None,
            "date_created": issued.date_created.isoformat(),
        }
    )
    print("The secret is shown only this once; store it now.", file=admin.err)


async def _keys_list(admin: _Admin, args: argparse.Namespace) -> None:
    if (
        await admin.db[c.ACCOUNTS].find_one({"_id": args.account_sid}, {"_id": 1})
        is None
    ):
        raise NotFoundError("Account", args.account_sid)
    admin.print(await list_api_keys(admin.db, args.account_sid))


async def _keys_revoke(admin: _Admin, args: argparse.Namespace) -> None:
    if not is_sid(args.key_sid, SidPrefix.API_KEY):
        raise NotFoundError("Key", args.key_sid)
    account_sid = await revoke_api_key(admin.db, admin.committer, args.key_sid)
    await admin.broadcast(account_sid=account_sid, key_sid=args.key_sid)
    admin.print({"sid": args.key_sid, "account_sid": account_sid, "revoked": True})


COMMANDS = {
    ("accounts", "create"): _accounts_create,
    ("accounts", "rotate-token"): _accounts_rotate_token,
    ("keys", "create"): _keys_create,
    ("keys", "list"): _keys_list,
    ("keys", "revoke"): _keys_revoke,
}


async def run(
    argv: Sequence[str],
    settings: CommonSettings,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run one command; 0 when done, 1 when refused (the reason on `err`)."""
    args = build_parser().parse_args(list(argv))
    admin = _Admin(settings, out, err)
    try:
        await admin.committer.start()
        await COMMANDS[args.group, args.command](admin, args)
        return 0
    except TaskRouterError as exc:
        print(f"error: {exc.message}", file=err)
        return 1
    finally:
        await admin.committer.stop()
        await admin.client.close()


def main(argv: Sequence[str] | None = None) -> int:
    return asyncio.run(run(sys.argv[1:] if argv is None else argv, _settings()))


def _settings() -> CommonSettings:
    """Settings from the environment; next to `make run`, its secret key too.

    Without TASKROUTER_SECRET_KEY the command would hash with the development
    default and print credentials no gateway started by `make run` accepts, so it
    reads the key `make run` keeps in TASKROUTER_DATA_DIR (default `.data`).
    """
    environ = dict(os.environ)
    saved = Path(environ.get("TASKROUTER_DATA_DIR", ".data")) / "secret_key"
    if "TASKROUTER_SECRET_KEY" not in environ and saved.exists():
        environ["TASKROUTER_SECRET_KEY"] = saved.read_text().strip()
    return load(CommonSettings, environ)


if __name__ == "__main__":
    sys.exit(main())
