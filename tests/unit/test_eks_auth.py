"""The EKS token (aws-iam-authenticator scheme) and the kubeconfig EksCluster exports."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlparse

import yaml

from stackwright.providers.aws.eks_auth import TOKEN_PREFIX, cluster_token, kubeconfig
from stackwright.providers.k8s.client import Settings, _kubeconfig

CREDENTIALS = {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "secret-example"}


def presigned_url(token: str) -> str:
    assert token.startswith(TOKEN_PREFIX)
    body = token[len(TOKEN_PREFIX):]
    assert "=" not in body, "base64url without padding"
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def test_the_token_is_a_presigned_get_caller_identity_signing_the_cluster_header() -> None:
    url = urlparse(presigned_url(cluster_token("prod", "eu-west-1", CREDENTIALS)))
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert (url.scheme, url.netloc) == ("https", "sts.eu-west-1.amazonaws.com")
    assert query["Action"] == "GetCallerIdentity" and query["Version"] == "2011-06-15"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/") and "/eu-west-1/sts/" in query["X-Amz-Credential"]
    assert query["X-Amz-SignedHeaders"].split(";") == ["host", "x-k8s-aws-id"]
    assert query["X-Amz-Expires"] == "60"
    assert len(query["X-Amz-Signature"]) == 64


def test_the_signature_covers_the_cluster_name() -> None:
    def signature(cluster: str) -> str:
        return parse_qs(urlparse(presigned_url(cluster_token(cluster, "us-east-1", CREDENTIALS))).query)[
            "X-Amz-Signature"][0]

    assert signature("a") != signature("b")


def test_the_kubeconfig_uses_the_token_instead_of_running_the_aws_cli(monkeypatch: object) -> None:
    text = kubeconfig("prod", "https://abc.eks.amazonaws.com", base64.b64encode(b"ca").decode(), "eu-west-1")
    user = yaml.safe_load(text)["users"][0]["user"]
    assert user["exec"]["args"] == ["--region", "eu-west-1", "eks", "get-token", "--cluster-name", "prod"]

    import stackwright.providers.aws.eks_auth as eks_auth

    made: list[tuple[str | None, str | None]] = []

    def fake_token(cluster: str | None, region: str | None) -> str:
        made.append((cluster, region))
        return cluster_token(cluster, region, CREDENTIALS)

    monkeypatch.setattr(eks_auth, "cluster_token", fake_token)  # type: ignore[attr-defined]
    config, expires = _kubeconfig(Settings(kubeconfig=text))
    assert made == [("prod", "eu-west-1")]
    assert config.user.token.startswith(TOKEN_PREFIX) and config.user.exec is None
    assert config.cluster.server == "https://abc.eks.amazonaws.com"
    assert expires is not None
