"""Write evidence to the S3 evidence bucket, with its hash in the object's metadata."""

from __future__ import annotations

import base64

from aws.session import Aws, CallLog


def put_evidence(aws: Aws, log: CallLog, *, bucket: str, key: str, body: bytes,
                 sha256: str, incident_id: str, kind: str) -> str:
    """Store one item; return its s3:// location."""
    # S3 checks the body against the checksum, so what lands is what was hashed.
    checksum = base64.b64encode(bytes.fromhex(sha256)).decode()
    aws.call(log, "s3", "put_object", Bucket=bucket, Key=key, Body=body,
             Metadata={"sha256": sha256, "incident-id": incident_id, "kind": kind},
             ChecksumSHA256=checksum, ServerSideEncryption="AES256")
    return f"s3://{bucket}/{key}"
