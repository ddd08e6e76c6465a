"""POST /aws/sns: only genuinely signed messages from trusted topics get in."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from bot.deps import Deps
from handlers.sns import SnsRejected, SnsVerifier, is_sns_url, signing_string
from storage.models import AuditEvent
from tests.aws_world import World
from tests.guardduty_events import ec2_event
from tests.harness import SlackDriver, blocks_text

TOPIC = "arn:aws:sns:us-east-1:123456789012:guardduty-findings"
CERT_URL = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-test.pem"
SUBSCRIBE = ("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription"
             f"&TopicArn={TOPIC}&Token=abc")


def _make_cert() -> tuple[rsa.RSAPrivateKey, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM)


KEY, PEM = _make_cert()


class Fetcher:
    """The hook irbot fetches certificates and subscribe links through."""

    def __init__(self) -> None:
        self.visited: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.visited.append(url)
        if url == CERT_URL:
            return PEM
        if url == SUBSCRIBE:
            return b"<ConfirmSubscriptionResponse/>"
        raise OSError(f"unexpected fetch of {url}")


def signed(body: dict[str, Any], *, version: str = "2",
           key: rsa.RSAPrivateKey = KEY) -> dict[str, Any]:
    """Sign an SNS message the way SNS does."""
    body = {**body, "SignatureVersion": version, "SigningCertURL": CERT_URL}
    digest = hashes.SHA256() if version == "2" else hashes.SHA1()
    signature = key.sign(signing_string(body), padding.PKCS1v15(), digest)
    return {**body, "Signature": base64.b64encode(signature).decode()}


def notification(message: Any, *, topic: str = TOPIC, version: str = "2") -> dict[str, Any]:
    return signed({"Type": "Notification", "MessageId": "m-1", "TopicArn": topic,
                   "Subject": "GuardDuty finding", "Message": json.dumps(message),
                   "Timestamp": "2026-12-03T10:00:00.000Z",
                   "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsub"},
                  version=version)


def test_verifier_accepts_both_signature_versions_and_caches_the_certificate() -> None:
    fetch = Fetcher()
    verifier = SnsVerifier((TOPIC,), fetch=fetch)
    for version in ("1", "2"):
        message = verifier.check(notification({"a": 1}, version=version))
        assert message.topic_arn == TOPIC and json.loads(message.message) == {"a": 1}
    assert fetch.visited == [CERT_URL]  # fetched once, then cached


def test_verifier_rejects_what_is_not_genuine() -> None:
    verifier = SnsVerifier((TOPIC,), fetch=Fetcher())
    good = notification({"a": 1})
    other_key, _pem = _make_cert()
    cases: list[tuple[dict[str, Any], str]] = [
        ({**good, "Message": json.dumps({"a": 2})}, "does not verify"),
        (signed({**good, "Signature": ""}, key=other_key), "does not verify"),
        (notification({"a": 1}, topic="arn:aws:sns:us-east-1:123456789012:other"),
         "not in IRBOT_SNS_TOPICS"),
        ({**good, "SigningCertURL": "https://evil.example.com/cert.pem"}, "SigningCertURL"),
        ({**good, "SigningCertURL": "http://sns.us-east-1.amazonaws.com/x.pem"},
         "SigningCertURL"),
        ({**good, "SignatureVersion": "3"}, "SignatureVersion"),
        ({**good, "Signature": "***"}, "base64"),
        ({**good, "Type": "Surprise"}, "not an SNS message type"),
        ({k: v for k, v in good.items() if k != "MessageId"}, "no MessageId"),
    ]
    for body, says in cases:
        with pytest.raises(SnsRejected, match=says):
            verifier.check(body)
    assert is_sns_url("https://sns.eu-west-1.amazonaws.com/a.pem")
    assert not is_sns_url("https://sns.eu-west-1.amazonaws.com.evil.com/a.pem")
    assert not is_sns_url("https://sns.eu-west-1.amazonaws.com:8443/a.pem")


@pytest.fixture
def app_extra_env() -> dict[str, str]:
    return {"IRBOT_SNS_TOPICS": TOPIC}


@pytest.fixture
def fetcher(deps: Deps) -> Fetcher:
    fetch = Fetcher()
    deps.fetch_url = fetch
    return fetch


def _post(driver: SlackDriver, body: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return driver.http.post("/aws/sns", content=raw, headers={
        "Content-Type": "text/plain; charset=UTF-8",
        "x-amz-sns-message-type": str(body.get("Type", "")) if isinstance(body, dict) else ""})


def test_subscription_is_confirmed_and_a_notification_opens_an_incident(
        driver: SlackDriver, deps: Deps, world: World, fetcher: Fetcher) -> None:
    confirmation = signed({"Type": "SubscriptionConfirmation", "MessageId": "m-0",
                           "Token": "abc", "TopicArn": TOPIC, "SubscribeURL": SUBSCRIBE,
                           "Message": "You have chosen to subscribe...",
                           "Timestamp": "2026-12-03T09:59:00.000Z"})
    response = _post(driver, confirmation)
    assert response.status_code == 200 and response.json()["status"] == "subscribed"
    assert SUBSCRIBE in fetcher.visited

    response = _post(driver, notification(ec2_event(world.instance_id)))
    assert response.status_code == 202 and response.json()["status"] == "accepted"
    _ts, root = driver.wait_root()
    assert world.instance_id in blocks_text(root)
    (incident,) = deps.engine.open_incidents()
    assert incident.opened_by == "guardduty"


def test_forged_or_untrusted_messages_change_nothing(
        driver: SlackDriver, deps: Deps, world: World, fetcher: Fetcher) -> None:
    forged = notification(ec2_event(world.instance_id))
    forged["Message"] = forged["Message"].replace("f-1", "f-forged")
    assert _post(driver, forged).status_code == 403
    wrong_topic = notification(ec2_event(world.instance_id),
                               topic="arn:aws:sns:us-east-1:123456789012:other")
    assert _post(driver, wrong_topic).status_code == 403
    evil = signed({"Type": "SubscriptionConfirmation", "MessageId": "m-0", "Token": "abc",
                   "TopicArn": TOPIC, "Message": "m", "Timestamp": "2026-12-03T09:59:00Z",
                   "SubscribeURL": "https://evil.example.com/?Action=ConfirmSubscription"})
    assert _post(driver, evil).status_code == 400
    assert not any("evil" in url for url in fetcher.visited)
    assert _post(driver, b"{nope").status_code == 400
    not_a_finding = notification({"hello": "world"})
    assert _post(driver, not_a_finding).status_code == 400
    assert _post(driver, b"[" * 100_000 + b"]" * 100_000).status_code == 400
    deep = signed({"Type": "Notification", "MessageId": "m-deep", "TopicArn": TOPIC,
                   "Message": "[" * 100_000 + "]" * 100_000,
                   "Timestamp": "2026-12-03T10:00:00.000Z"})
    assert _post(driver, deep).status_code == 400  # genuine, but no finding inside
    assert deps.engine.open_incidents() == []
    assert driver.slack.calls_to("chat.postMessage") == []
    with deps.sessions() as session:
        outcomes = [(e.action, e.outcome) for e in session.query(AuditEvent)]
    assert outcomes.count(("sns.rejected", "rejected")) == 2
    assert ("sns.subscribe", "rejected") in outcomes
