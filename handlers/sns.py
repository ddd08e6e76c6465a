"""Amazon SNS HTTPS deliveries: checking that a message is genuine, the way AWS documents it.

A message is trusted only when (1) its signing certificate comes over HTTPS from
sns.<region>.amazonaws.com, (2) the RSA signature over the canonical fields verifies
(SignatureVersion 1: SHA1, 2: SHA256), and (3) its topic is one irbot was told to trust.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

Fetch = Callable[[str], bytes]

_SNS_HOST = re.compile(r"^sns\.[a-z]{2}(-[a-z]+)+-\d\.amazonaws\.com(\.cn)?$")
_TYPES = ("Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation")
# The fields signed, in order, per message type (AWS: "Verifying the signatures of
# Amazon SNS messages").
_SIGNED = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp",
                                 "Token", "TopicArn", "Type"),
}
_SIGNED["UnsubscribeConfirmation"] = _SIGNED["SubscriptionConfirmation"]
_HASHES: dict[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1,
                                                          "2": hashes.SHA256}


class SnsRejected(ValueError):
    """The message is not a genuine SNS message for a trusted topic; says why."""


@dataclass(frozen=True)
class SnsMessage:
    type: str
    topic_arn: str
    message_id: str
    message: str
    subscribe_url: str


def is_sns_url(url: str) -> bool:
    """True for an https URL on an SNS regional endpoint (certificates, subscribe links)."""
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(_SNS_HOST.match(parts.hostname or "")) and (
        parts.port in (None, 443))


def fetch_https(url: str) -> bytes:
    """Fetch a small document over HTTPS (certificates, confirmation links)."""
    if not is_sns_url(url):
        raise ValueError(f"{url[:100]} is not an SNS endpoint")
    with urllib.request.urlopen(url, timeout=10) as response:
        if not is_sns_url(response.geturl()):  # a redirect away from SNS is not trusted
            raise ValueError("redirected away from the SNS endpoint")
        return bytes(response.read(64 * 1024))


def signing_string(body: Mapping[str, Any]) -> bytes:
    """Return the canonical text SNS signed for this message."""
    lines = []
    for name in _SIGNED[str(body["Type"])]:
        if name in body and body[name] is not None:
            lines.append(f"{name}\n{body[name]}\n")
    return "".join(lines).encode("utf-8")


class SnsVerifier:
    """Checks SNS messages against the trusted topics; certificates are cached by URL."""

    def __init__(self, topics: tuple[str, ...], fetch: Fetch = fetch_https) -> None:
        self.topics = frozenset(topics)
        self._fetch = fetch
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._lock = threading.Lock()

    def check(self, body: Any) -> SnsMessage:
        """Return the message if it is genuine and for a trusted topic; raise SnsRejected."""
        if not isinstance(body, dict):
            raise SnsRejected("the body is not a JSON object")
        kind = body.get("Type")
        if kind not in _TYPES:
            raise SnsRejected(f"Type {str(kind)[:40]!r} is not an SNS message type")
        for name in _SIGNED[kind]:
            if name != "Subject" and not isinstance(body.get(name), str):
                raise SnsRejected(f"the message has no {name}")
        topic = str(body["TopicArn"])
        if topic not in self.topics:
            raise SnsRejected(f"topic {topic[:200]} is not in IRBOT_SNS_TOPICS")
        version = str(body.get("SignatureVersion", ""))
        if version not in _HASHES:
            raise SnsRejected(f"SignatureVersion {version[:10]!r} is not 1 or 2")
        cert_url = str(body.get("SigningCertURL", ""))
        if not is_sns_url(cert_url) or not cert_url.endswith(".pem"):
            raise SnsRejected("SigningCertURL is not an https://sns.<region>.amazonaws.com "
                              "certificate")
        try:
            signature = base64.b64decode(str(body.get("Signature", "")), validate=True)
        except (binascii.Error, ValueError):
            raise SnsRejected("the Signature is not base64") from None
        try:
            self._key(cert_url).verify(signature, signing_string(body), padding.PKCS1v15(),
                                       _HASHES[version]())
        except InvalidSignature:
            raise SnsRejected("the signature does not verify") from None
        return SnsMessage(type=kind, topic_arn=topic, message_id=str(body["MessageId"]),
                          message=str(body["Message"]),
                          subscribe_url=str(body.get("SubscribeURL") or ""))

    def confirm(self, message: SnsMessage) -> None:
        """Visit the SubscribeURL of a checked SubscriptionConfirmation."""
        if not is_sns_url(message.subscribe_url):
            raise SnsRejected("SubscribeURL is not on an SNS endpoint")
        self._fetch(message.subscribe_url)

    def _key(self, url: str) -> rsa.RSAPublicKey:
        with self._lock:
            cached = self._keys.get(url)
        if cached is not None:
            return cached
        try:
            pem = self._fetch(url)
            key = x509.load_pem_x509_certificate(pem).public_key()
        except (OSError, ValueError) as exc:
            raise SnsRejected(f"the signing certificate could not be loaded ({exc})") from None
        if not isinstance(key, rsa.RSAPublicKey):
            raise SnsRejected("the signing certificate does not hold an RSA key")
        with self._lock:
            if len(self._keys) > 64:  # SNS rotates rarely; never grow without bound
                self._keys.clear()
            self._keys[url] = key
        return key
