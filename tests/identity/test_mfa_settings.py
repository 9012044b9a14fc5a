"""The WebAuthn relying party id is configured, checked at start-up, never read from a request."""

from __future__ import annotations

from tests.cli.test_configuration import data_dir, run  # noqa: F401 - data_dir is a fixture


def test_a_relying_party_id_that_is_an_address_stops_start_up(data_dir):  # noqa: F811
    outcome = run(data_dir, "user", "list", STRONGROOM_WEBAUTHN_RP_ID="10.0.0.5")

    assert outcome.status == 2
    assert "STRONGROOM_WEBAUTHN_RP_ID='10.0.0.5' must be a domain name" in outcome.err


def test_a_relying_party_id_of_another_site_stops_start_up(data_dir):  # noqa: F811
    outcome = run(
        data_dir,
        "user",
        "list",
        STRONGROOM_PUBLIC_URL="https://help.example.com",
        STRONGROOM_WEBAUTHN_RP_ID="elsewhere.example",
    )

    assert outcome.status == 2
    assert "must be the host of STRONGROOM_PUBLIC_URL (help.example.com)" in outcome.err


def test_a_parent_domain_is_a_valid_relying_party_id(data_dir):  # noqa: F811
    outcome = run(
        data_dir,
        "user",
        "list",
        STRONGROOM_PUBLIC_URL="https://help.example.com",
        STRONGROOM_WEBAUTHN_RP_ID="example.com",
    )

    assert outcome.status == 0, outcome.err


def test_by_default_it_is_the_public_host_and_localhost_for_loopback():
    from django.conf import settings

    assert settings.PUBLIC_URL == "http://127.0.0.1:8000" and settings.WEBAUTHN_RP_ID == "localhost"
