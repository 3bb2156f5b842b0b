"""AWS emulators: the rule the AWS provider and the S3 state store share.

An endpoint on the loopback interface (``http://127.0.0.1:N``, ``http://localhost:N``,
``http://[::1]:N``) is an emulator (the local cloud of ``stackwright local-cloud start``,
a moto server, a container) and gets the emulator's dummy credentials when none are
configured for it: the provider's ``aws:`` section names no ``credentials`` or
``profile``; for the state store, the environment and the AWS config files give none.
A real AWS endpoint never gets them.

This module is neutral ground: state backends must not import providers, nor
providers the state, so the rule lives here and imports nothing.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
"""The host names of the loopback interface an emulator listens on."""

EMULATOR_CREDENTIALS = {"access_key_id": "testing", "secret_access_key": "testing"}
"""What an emulator accepts (moto takes any key; "testing" is its convention)."""


def is_emulator(endpoint: object) -> bool:
    """Whether ``endpoint`` is an explicit URL on the loopback interface."""
    if not isinstance(endpoint, str) or not endpoint:
        return False
    try:
        return urlsplit(endpoint).hostname in LOOPBACK
    except ValueError:  # a malformed URL: boto3 says what is wrong with it
        return False
