"""EKS authentication: the aws-iam-authenticator token and the kubeconfig that uses it.

An EKS API server accepts as bearer token a presigned STS ``GetCallerIdentity`` URL
whose signature covers the header ``x-k8s-aws-id: <cluster name>``; it calls STS
with it to learn who is asking. The token is ``k8s-aws-v1.`` followed by the URL in
unpadded base64url. It is valid for 15 minutes, so the kubeconfig carries no token:
its user runs ``aws eks get-token`` (what kubectl uses), and Stackwright's Kubernetes
provider makes the same token in-process with botocore instead of running the CLI.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

import yaml

TOKEN_PREFIX = "k8s-aws-v1."
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_SECONDS = 60
"""How long the presigned URL itself is valid; EKS adds its own 15 minutes."""


def cluster_token(cluster: str | None, region: str | None, credentials: Mapping[str, str] | None = None) -> str:
    """A bearer token for ``cluster``, signed with the default credential chain (or
    ``credentials``: ``access_key_id``, ``secret_access_key``, ``session_token``)."""
    import botocore.session
    from botocore.signers import RequestSigner

    if not cluster:
        raise ValueError("the EKS token needs a cluster name (--cluster-name)")
    session = botocore.session.get_session()
    region = region or session.get_config_variable("region") or "us-east-1"
    if credentials is not None:
        session.set_credentials(credentials["access_key_id"], credentials["secret_access_key"],
                                credentials.get("session_token"))
    found = session.get_credentials()
    if found is None:
        raise ValueError("no AWS credentials to sign the EKS token with")
    signer = RequestSigner(session.get_service_model("sts").service_id, region, "sts", "v4",
                           found, session.get_component("event_emitter"))
    url = signer.generate_presigned_url(
        {"method": "GET", "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
         "body": {}, "headers": {CLUSTER_ID_HEADER: cluster}, "context": {}},
        region_name=region, expires_in=PRESIGN_SECONDS, operation_name="")
    return TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode("utf-8")).decode("ascii").rstrip("=")


def kubeconfig(cluster: str, endpoint: str, certificate_authority: str, region: str) -> str:
    """A kubeconfig for ``cluster`` whose user gets a token through STS."""
    user: dict[str, Any] = {"exec": {
        "apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws",
        "args": ["--region", region, "eks", "get-token", "--cluster-name", cluster],
        "interactiveMode": "Never"}}
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": cluster,
        "clusters": [{"name": cluster, "cluster": {
            "server": endpoint, "certificate-authority-data": certificate_authority}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": cluster}}],
        "users": [{"name": cluster, "user": user}],
    }, sort_keys=False)
