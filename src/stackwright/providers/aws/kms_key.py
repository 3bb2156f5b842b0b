"""AWS KMS as a key for secrets at rest (``secrets: awskms://alias/NAME``).

KMS encrypts each secret itself (secrets are small; KMS takes up to 4 KiB), so the
key never leaves KMS and who may decrypt is an IAM question. The ciphertext blob names
its key, so opening needs only credentials, not the alias. ``?region=R`` and
``?endpoint=URL`` (the local emulator) may follow the alias; otherwise boto3's own
settings apply (``AWS_REGION``, ``AWS_ENDPOINT_URL``...).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stackwright.errors import StackwrightError

SCHEME = "awskms://"


class KmsKeyError(StackwrightError):
    """KMS refused or could not be reached."""


class KmsKey:
    scheme = "awskms"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url) if url else None
        query = parse_qs(parts.query) if parts else {}
        self.key_id = (parts.netloc + parts.path) if parts else ""
        self.region = query.get("region", [None])[0]
        self.endpoint = query.get("endpoint", [None])[0]
        self._client: Any = None

    def _kms(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("kms", region_name=self.region, endpoint_url=self.endpoint)
        return self._client

    def seal(self, plain: bytes) -> str:
        blob = self._call("encrypt", KeyId=self.key_id, Plaintext=plain)["CiphertextBlob"]
        return base64.b64encode(blob).decode("ascii")

    def open(self, payload: str) -> bytes:
        try:
            blob = base64.b64decode(payload, validate=True)
        except ValueError:
            raise KmsKeyError("a KMS ciphertext was altered", hint="restore the file it came from") from None
        return bytes(self._call("decrypt", CiphertextBlob=blob)["Plaintext"])

    def _call(self, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self._kms(), operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise KmsKeyError(f"KMS {operation} refused: {error.get('Code')}: {error.get('Message')}",
                              hint="check the key alias, your AWS credentials and the key policy") from None
        except BotoCoreError as exc:
            raise KmsKeyError(f"KMS {operation} failed: {exc}",
                              hint="check the region, the endpoint and your AWS credentials") from None
