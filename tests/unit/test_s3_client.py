"""The S3 client's session keeps only the endpoints of S3 and the credential services
(store/s3.py): those services must resolve exactly as with the whole table, or a profile
that assumes a role or signs in with SSO would break where the tests' servers cannot see."""

from __future__ import annotations

import botocore.session
import pytest
from botocore.exceptions import BotoCoreError

from claude_sync.store import s3

#: what the credential providers call: assumed roles and web identity, SSO and its tokens
SERVICES = ("s3", "sts", "sso", "sso-oidc")


def _resolved(session: botocore.session.Session, service: str, region: str | None) -> object:
    try:
        client = session.create_client(
            service, region_name=region, aws_access_key_id="k", aws_secret_access_key="s"
        )
    except BotoCoreError as exc:
        return type(exc)
    return client.meta.endpoint_url, client.meta.region_name


@pytest.mark.parametrize("region", [None, "us-east-1", "eu-west-3", "cn-north-1", "us-gov-west-1"])
def test_the_credential_services_resolve_as_with_the_whole_table(monkeypatch, tmp_path, region):
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    whole = botocore.session.get_session()
    trimmed = botocore.session.get_session()
    trimmed.create_client("s3", region_name="us-east-1")
    s3._forget_other_services(trimmed)
    for service in SERVICES:
        assert _resolved(trimmed, service, region) == _resolved(whole, service, region), service


def test_the_table_is_trimmed(monkeypatch):
    session = botocore.session.get_session()
    s3._forget_other_services(session)
    endpoints = session.get_component("data_loader").load_data("endpoints")
    kept = {name for p in endpoints["partitions"] for name in p["services"]}
    assert "sts" in kept and "s3" in kept
    assert kept <= s3._ENDPOINTS_KEPT
