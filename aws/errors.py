"""The project's AWS errors, mapped from botocore error codes in one place."""

from __future__ import annotations

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)


class AwsError(Exception):
    """An AWS call failed; `code` is AWS's error code, `operation` the API call."""

    def __init__(
        self, message: str, *, code: str = "", operation: str = "", request_id: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.operation = operation
        self.request_id = request_id


class NotFound(AwsError):
    """The resource does not exist (in this account and region)."""


class Malformed(AwsError):
    """AWS rejected an identifier as malformed."""


class AccessDenied(AwsError):
    """The credentials lack a permission; the message names the action."""


class Throttled(AwsError):
    """AWS kept throttling the call after the retries."""


class Unavailable(AwsError):
    """AWS could not be reached or no credentials or region are configured."""


_NOT_FOUND_SUFFIXES = (".NotFound", "NotFound", "NoSuchEntity", "NotFoundException")
_DENIED = {"UnauthorizedOperation", "AccessDenied", "AccessDeniedException", "AuthFailure"}
_THROTTLED = {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests"}

# boto3 service name -> IAM action prefix, for a readable AccessDenied message.
_SERVICE_PREFIX = {
    "ec2": "ec2",
    "autoscaling": "autoscaling",
    "elbv2": "elasticloadbalancing",
    "iam": "iam",
    "sts": "sts",
}


def iam_action(service: str, operation: str) -> str:
    """Return the IAM action name for a boto3 client's operation."""
    return f"{_SERVICE_PREFIX.get(service, service)}:{operation}"


def from_client_error(exc: ClientError, *, service: str, operation: str) -> AwsError:
    """Map a botocore ClientError to the project's error for its code."""
    # ClientError knows the API's own name (ModifyNetworkInterfaceAttribute), which is
    # also the IAM action's.
    operation = str(getattr(exc, "operation_name", "") or operation)
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = str(error.get("Message", "")) or str(exc)
    request_id = str(exc.response.get("ResponseMetadata", {}).get("RequestId", ""))
    kwargs = {"code": code, "operation": operation, "request_id": request_id}
    if code.endswith(".Malformed") or (
        code == "InvalidParameterValue" and "Invalid id" in message
    ):
        return Malformed(message, **kwargs)
    if code.endswith(_NOT_FOUND_SUFFIXES):
        return NotFound(message, **kwargs)
    if code in _DENIED:
        return AccessDenied(
            f"missing permission {iam_action(service, operation)} ({code}: {message})", **kwargs
        )
    if code in _THROTTLED:
        return Throttled(f"{operation} was throttled: {message}", **kwargs)
    return AwsError(f"{operation} failed: {code}: {message}", **kwargs)


def from_botocore_error(exc: BotoCoreError, *, operation: str) -> AwsError:
    """Map a botocore transport or configuration error."""
    if isinstance(exc, NoCredentialsError):
        return Unavailable("no AWS credentials are configured", operation=operation)
    if isinstance(exc, NoRegionError):
        return Unavailable("no AWS region is configured (AWS_REGION)", operation=operation)
    if isinstance(exc, EndpointConnectionError):
        return Unavailable(f"cannot reach AWS: {exc}", operation=operation)
    return AwsError(f"{operation} failed: {exc}", operation=operation)
