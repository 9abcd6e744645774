"""Principals on the broker: SCRAM users and their ACLs, created through the admin API.

Run as a super user (`admin`). `bootstrap()` gives the service's own principals (`api`,
`processor`, `ops`) their credentials and the grants of `acls.grants()`; `add_principal()` and
`remove_principal()` do the same for any one principal (another operator, a producer). Every step
is idempotent: upserting a user or creating an ACL that exists changes nothing, so `make up` and
the test fixture run it on every start. Grants are only ever added here; `remove_principal()`
deletes all of a principal's ACLs and its user. The broker applies changes asynchronously, so each
call returns once it sees them (or fails at its deadline).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from payment_service.config.settings import KafkaSettings
from payment_service.kafka.acls import Grant, Operation, Pattern, Resource, Role, grants, principal
from payment_service.kafka.security import client_config

ADMIN_TIMEOUT_SECONDS = 30.0
SCRAM_ITERATIONS = 8192
SERVICE_ROLES: tuple[Role, ...] = ("api", "processor", "ops")


def admin_client(kafka: KafkaSettings) -> AdminClient:
    """An admin client with these settings' credentials (a super user's, for changes)."""
    return AdminClient(client_config(kafka))


def read_credentials(path: str) -> dict[str, str]:
    """`name=password` lines (`#` comments) from a file, or from stdin for `-`."""
    text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for line in text.splitlines():
        name, sep, password = line.strip().partition("=")
        if sep and not name.startswith("#"):
            found[name.strip()] = password.strip()
    return found


def bootstrap(kafka: KafkaSettings, passwords: Mapping[str, str]) -> list[str]:
    """The service's principals, each with its password from `passwords` and its grants."""
    missing = [role for role in SERVICE_ROLES if not passwords.get(role)]
    if missing:
        raise ValueError(f"no password given for: {', '.join(missing)}")
    admin = admin_client(kafka)
    report = []
    for role in SERVICE_ROLES:
        count = add_principal(admin, kafka, role, role, passwords[role])
        report.append(f"principal {role}: password set, {count} ACLs")
    return report


def add_principal(
    admin: AdminClient, kafka: KafkaSettings, name: str, role: Role, password: str
) -> int:
    """Upsert user `name` with `password` and give it `role`'s grants; returns their count."""
    wanted = grants(role, name, kafka)
    upsert_user(admin, name, password)
    bindings = [binding(name, g) for g in wanted]
    _wait_all(admin.create_acls(bindings, request_timeout=ADMIN_TIMEOUT_SECONDS))
    _until(lambda: set(wanted) <= set(grants_of(admin, name)), f"the ACLs of {name}")
    return len(wanted)


def remove_principal(admin: AdminClient, name: str) -> int:
    """Delete every ACL of `name`, then its SCRAM user; returns how many ACLs went."""
    deleted = _wait_all(admin.delete_acls([_filter(name)], request_timeout=ADMIN_TIMEOUT_SECONDS))
    count = sum(len(result) for result in deleted)
    deletion = UserScramCredentialDeletion(name, ScramMechanism.SCRAM_SHA_512)
    try:
        _wait_all(admin.alter_user_scram_credentials([deletion]))
    except KafkaException as exc:
        if exc.args[0].name() != "RESOURCE_NOT_FOUND":
            raise
    _until(lambda: not acls_of(admin, name), f"the ACLs of {name} to go")
    return count


def upsert_user(admin: AdminClient, name: str, password: str) -> None:
    """Create or update SCRAM-SHA-512 user `name`, and wait until the broker knows it."""
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    upsert = UserScramCredentialUpsertion(name, info, password.encode())
    _wait_all(admin.alter_user_scram_credentials([upsert]))
    _until(lambda: name in _scram_users(admin, name), f"SCRAM user {name}")


def acls_of(admin: AdminClient, name: str) -> list[AclBinding]:
    """Every ACL the broker holds for principal `name`."""
    found = admin.describe_acls(_filter(name), request_timeout=ADMIN_TIMEOUT_SECONDS)
    bindings: list[AclBinding] = found.result(timeout=ADMIN_TIMEOUT_SECONDS)
    return bindings


def grants_of(admin: AdminClient, name: str) -> list[Grant]:
    """The broker's ACLs for `name` that are grants of our table (ALLOW from any host)."""
    found = []
    for b in acls_of(admin, name):
        try:
            grant = Grant(
                Resource(b.restype.name),
                b.name,
                Operation(b.operation.name),
                Pattern(b.resource_pattern_type.name),
            )
        except ValueError:  # a resource or operation our table never grants
            continue
        if b.permission_type == AclPermissionType.ALLOW and b.host == "*":
            found.append(grant)
    return sorted(found)


def binding(name: str, grant: Grant) -> AclBinding:
    """The broker's ACL for one grant of principal `name`."""
    return AclBinding(
        ResourceType[grant.resource],
        grant.name,
        ResourcePatternType[grant.pattern],
        principal(name),
        "*",
        AclOperation[grant.operation],
        AclPermissionType.ALLOW,
    )


def _filter(name: str) -> AclBindingFilter:
    return AclBindingFilter(
        ResourceType.ANY,
        None,
        ResourcePatternType.ANY,
        principal(name),
        None,
        AclOperation.ANY,
        AclPermissionType.ANY,
    )


def _scram_users(admin: AdminClient, name: str) -> set[str]:
    try:
        described = admin.describe_user_scram_credentials(
            [name], request_timeout=ADMIN_TIMEOUT_SECONDS
        )
        description = described[name].result(timeout=ADMIN_TIMEOUT_SECONDS)
    except KafkaException as exc:
        if exc.args[0].name() == "RESOURCE_NOT_FOUND":
            return set()
        raise
    return {name} if description.scram_credential_infos else set()


def _wait_all(futures: Mapping[Any, Future[Any]] | Iterable[Future[Any]]) -> list[Any]:
    """Every future's result (the admin client's calls answer with a dict or list of them)."""
    pending = futures.values() if isinstance(futures, Mapping) else futures
    return [future.result(timeout=ADMIN_TIMEOUT_SECONDS) for future in pending]


def _until(condition: Callable[[], bool], what: str) -> None:
    """Poll `condition()` until true: the broker applies metadata changes asynchronously."""
    deadline = time.monotonic() + ADMIN_TIMEOUT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"the broker did not show {what} within {ADMIN_TIMEOUT_SECONDS}s")
        time.sleep(0.05)
