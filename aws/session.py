"""The one place boto3 sessions and clients are made: region, retries, emulator endpoint."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from aws.errors import AwsError, from_botocore_error, from_client_error

T = TypeVar("T")

# Standard retry mode backs off on throttling and transient errors.
CLIENT_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)


# The services a containment touches; their clients are built at start-up.
WARM_SERVICES = ("ec2", "autoscaling", "elbv2", "iam")


@dataclass(frozen=True)
class CallRecord:
    """One AWS call as the audit trail keeps it."""

    service: str
    operation: str
    params: dict[str, Any]
    request_id: str
    ok: bool
    error_code: str
    started: float
    seconds: float


@dataclass
class CallLog:
    """Thread-safe list of the AWS calls made for one piece of work."""

    records: list[CallRecord] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, record: CallRecord) -> None:
        with self._lock:
            self.records.append(record)

    def request_ids(self) -> list[str]:
        """Return the request ids of every call, in the order they were made."""
        with self._lock:
            return [r.request_id for r in self.records if r.request_id]


class Aws:
    """Clients for one account and region, and a recorded way to call them."""

    def __init__(
        self, session: boto3.session.Session, *, region: str, account_id: str = ""
    ) -> None:
        self._session = session
        self.region = region
        self.account_id = account_id
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str) -> Any:
        """Return the (thread-safe, shared) client for `service`."""
        client = self._clients.get(service)
        if client is not None:
            return client
        # Creating clients from one boto3 session is not thread-safe; using them is.
        with self._lock:
            if service not in self._clients:
                make: Callable[..., Any] = self._session.client
                self._clients[service] = make(
                    service, region_name=self.region, config=CLIENT_CONFIG
                )
            return self._clients[service]

    def set_client(self, service: str, client: Any) -> None:
        """Use this client for `service` (a test's stubbed client, a tool's own)."""
        with self._lock:
            self._clients[service] = client

    def warm(self, services: Iterable[str] = WARM_SERVICES) -> None:
        """Create the clients now, so the first incident does not pay for loading models."""
        for service in services:
            self.client(service)

    def call(self, log: CallLog, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """Call `service.operation(**params)`, record it in `log`, map errors to AwsError."""
        started = time.monotonic()
        method: Callable[..., dict[str, Any]] = getattr(self.client(service), operation)
        try:
            response = method(**params)
        except ClientError as exc:
            mapped = from_client_error(exc, service=service, operation=operation)
            log.add(_record(service, operation, params, mapped.request_id, False, mapped.code,
                            started))
            raise mapped from exc
        except BotoCoreError as exc:
            mapped = from_botocore_error(exc, operation=operation)
            log.add(_record(service, operation, params, "", False, type(exc).__name__, started))
            raise mapped from exc
        except ResponseParserError as exc:  # an answer botocore cannot read (an emulator's page)
            log.add(_record(service, operation, params, "", False, "Unparseable", started))
            raise AwsError(f"{operation} returned a response that cannot be read",
                           code="Unparseable", operation=operation) from exc
        except NotImplementedError as exc:  # an emulator without this API (moto)
            log.add(_record(service, operation, params, "", False, "NotImplemented", started))
            raise AwsError(f"{operation} is not implemented here", code="NotImplemented",
                           operation=operation) from exc
        request_id = str(response.get("ResponseMetadata", {}).get("RequestId", ""))
        log.add(_record(service, operation, params, request_id, True, "", started))
        return response

    def paginate(
        self, log: CallLog, service: str, operation: str, key: str, **params: Any
    ) -> list[Any]:
        """Call a paginated operation until the end and return every item under `key`."""
        items: list[Any] = []
        token_in, token_out = _PAGE_TOKENS.get((service, operation), ("NextToken", "NextToken"))
        while True:
            page = self.call(log, service, operation, **params)
            items.extend(page.get(key, []))
            token = page.get(token_out)
            if not token:
                return items
            params = {**params, token_in: token}


# (input, output) names of the page token where they are not NextToken.
_PAGE_TOKENS: Mapping[tuple[str, str], tuple[str, str]] = {
    ("elbv2", "describe_target_groups"): ("Marker", "NextMarker"),
    ("elbv2", "describe_load_balancers"): ("Marker", "NextMarker"),
    ("iam", "list_instance_profiles"): ("Marker", "Marker"),
}


def _record(
    service: str, operation: str, params: dict[str, Any], request_id: str, ok: bool, code: str,
    started: float,
) -> CallRecord:
    return CallRecord(
        service=service,
        operation=operation,
        params=params,
        request_id=request_id,
        ok=ok,
        error_code=code,
        started=started,
        seconds=time.monotonic() - started,
    )


@dataclass(frozen=True)
class Identity:
    """The humans behind an action, carried into AWS when irbot assumes a role."""

    incident_id: str
    requester: str
    approver: str = ""

    def session_name(self) -> str:
        """Return a RoleSessionName CloudTrail shows: irbot-<incident>-<requester>[-<approver>]."""
        parts = ["irbot", self.incident_id, self.requester] + (
            [self.approver] if self.approver else [])
        name = "-".join(re.sub(r"[^\w+=,.@-]", "_", p) for p in parts)
        return name[:64]

    def tags(self) -> list[dict[str, str]]:
        """Return the session tags: incident, requester and approver."""
        return [
            {"Key": "irbot:incident", "Value": self.incident_id},
            {"Key": "irbot:requester", "Value": self.requester},
            {"Key": "irbot:approver", "Value": self.approver or "none"},
        ]


class NoRole(AwsError):
    """irbot has no way into an account: the message says exactly what to configure."""


def role_account(role_arn: str) -> str:
    """Return the account id inside an IAM role ARN."""
    return role_arn.split(":")[4]


class AwsFactory:
    """Builds `Aws` handles for an account and region.

    The bot's own account is read with its own credentials. Actions there run through
    `role_arn` when one is set. Every other account is reached only through the role that
    `account_roles` maps it to, assumed for each action with the incident and the people
    behind it in the session name and tags. An account with no role raises `NoRole`.
    """

    def __init__(
        self, *, default_region: str, session: boto3.session.Session | None = None,
        role_arn: str = "", account_roles: Mapping[str, str] | None = None,
    ) -> None:
        self.default_region = default_region
        self.role_arn = role_arn
        self.roles: dict[str, str] = dict(account_roles or {})
        if role_arn:
            self.roles.setdefault(role_account(role_arn), role_arn)
        self._session = session or boto3.session.Session()
        self._cache: dict[str, Aws] = {}
        self._readers: dict[tuple[str, str], tuple[Aws, float]] = {}
        self._lock = threading.Lock()
        self._home: tuple[str, str] | None = None  # (account id, principal ARN)

    def for_region(self, region: str | None = None) -> Aws:
        """Return the shared handle for `region` in the bot's own identity."""
        region = region or self.default_region
        with self._lock:
            if region not in self._cache:
                self._cache[region] = Aws(self._session, region=region)
            return self._cache[region]

    def home(self) -> tuple[str, str]:
        """Return the bot's own account id and principal ARN ("" when STS cannot tell)."""
        if self._home is None:
            try:
                me = self.for_region().call(CallLog(), "sts", "get_caller_identity")
            except AwsError:
                return "", ""
            self._home = (str(me.get("Account", "")), str(me.get("Arn", "")))
        return self._home

    def is_home(self, account_id: str) -> bool:
        """True when `account_id` is the bot's own (or unknown, or cannot be told apart)."""
        home = self.home()[0]
        return not account_id or not home or account_id == home

    def reachable(self, account_id: str) -> bool:
        """True when irbot can act in the account: its own, or one with a role."""
        return account_id in self.roles or self.is_home(account_id)

    def no_role_message(self, account_id: str) -> str:
        """Say exactly what to configure so irbot can act in `account_id`."""
        principal = self.home()[1] or "the principal irbot runs as"
        return (
            f"irbot has no role for account {account_id}, so it cannot look at or act on "
            f"anything there. To fix it: (1) in {account_id}, create an IAM role (for example "
            f"`irbot-responder`) with the permissions in iam-policy.json, whose trust policy "
            f"lets `{principal}` call sts:AssumeRole and sts:TagSession; (2) add "
            f"`{account_id}=arn:aws:iam::{account_id}:role/irbot-responder` to "
            f"IRBOT_ACCOUNT_ROLES (comma-separated account=role-ARN pairs) and restart irbot."
        )

    def reader(self, account_id: str = "", region: str | None = None) -> Aws:
        """Return a handle for looking at `account_id`: own credentials at home, otherwise
        the account's role under the session name `irbot-reader`, cached until near expiry."""
        region = region or self.default_region
        if self.is_home(account_id):
            return self.for_region(region)
        role = self.roles.get(account_id)
        if role is None:
            raise NoRole(self.no_role_message(account_id), code="NoRole",
                         operation="AssumeRole")
        with self._lock:
            cached = self._readers.get((account_id, region))
        if cached is not None and cached[1] > time.time():
            return cached[0]
        aws, expires = self._assume(CallLog(), role, region, "irbot-reader",
                                    [{"Key": "irbot:purpose", "Value": "read"}])
        with self._lock:
            self._readers[(account_id, region)] = (aws, expires - 300)
        return aws

    def for_action(self, log: CallLog, *, region: str | None, identity: Identity,
                   account_id: str = "") -> Aws:
        """Return a handle to act with in `account_id`: the account's role, assumed for
        `identity`, when there is one; the bot's own credentials at home otherwise."""
        role = self.roles.get(account_id) if account_id else self.role_arn or None
        if role is None and not self.is_home(account_id):
            raise NoRole(self.no_role_message(account_id), code="NoRole",
                         operation="AssumeRole")
        if role is None:
            return self.for_region(region)
        aws, _expires = self._assume(log, role, region or self.default_region,
                                     identity.session_name(), identity.tags())
        return aws

    def _assume(self, log: CallLog, role: str, region: str, name: str,
                tags: list[dict[str, str]]) -> tuple[Aws, float]:
        response = self.for_region(region).call(
            log, "sts", "assume_role", RoleArn=role, RoleSessionName=name, Tags=tags,
            DurationSeconds=3600,
        )
        creds = response["Credentials"]
        session = boto3.session.Session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        expiration = creds.get("Expiration")
        expires = expiration.timestamp() if hasattr(expiration, "timestamp") else (
            time.time() + 3600)
        return Aws(session, region=region, account_id=role_account(role)), expires


def run_all(tasks: Iterable[Callable[[], T]], *, max_workers: int = 16) -> list[T | AwsError]:
    """Run independent calls at once; return each result or its AwsError, in order."""
    task_list = list(tasks)
    if not task_list:
        return []

    def guarded(task: Callable[[], T]) -> T | AwsError:
        try:
            return task()
        except AwsError as exc:
            return exc

    with ThreadPoolExecutor(max_workers=min(max_workers, len(task_list))) as pool:
        return list(pool.map(guarded, task_list))
