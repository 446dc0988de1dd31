"""redact: known secret values and credential-shaped text never reach a log line."""

from __future__ import annotations

from chalicelib.redact import REDACTED, redact, secret_values
from chalicelib.settings import Settings


def test_known_values_and_credential_shapes_are_replaced() -> None:
    text = ("index https://user:hunter2-pass@mirror.example/simple; Authorization: Bearer abcdefghijkl123; "
            "key shk_0123456789abcdef_Zm9vYmFyYmF6cXV4cXV1eA; id AKIAIOSFODNN7EXAMPLE; password=letmein; "
            "token: 'tok tok'; blob Qm9vb0JhcjEyMzQ1Njc4OTBhYmNkZWZnaGlqa2xtbm9w; the runner secret is s3cr3t-value")  # fmt: skip
    cleaned = redact(text, ["s3cr3t-value"])
    for secret in ("hunter2-pass", "abcdefghijkl123", "Zm9vYmFy", "AKIAIOSFODNN7EXAMPLE", "letmein", "tok tok",
                   "Qm9vb0JhcjEyMzQ1Njc4OTBhYmNkZWZnaGlqa2xtbm9w", "s3cr3t-value"):  # fmt: skip
        assert secret not in cleaned, secret
    assert cleaned.count(REDACTED) >= 8
    assert "https://user:[redacted]@mirror.example/simple" in cleaned


def test_ordinary_pip_output_is_left_alone() -> None:
    line = ("Downloading numpy-2.2.6-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl from "
            "https://files.pythonhosted.org/packages/3a/4f/5b3a1b0e6f2c9f1d2e7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0/x "
            "sha256=8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254")  # fmt: skip
    assert redact(line) == line


def test_secret_values_come_from_secret_settings_and_variables() -> None:
    settings = Settings(admin_key="shk_admin_abcdefghijklmnopqrstuvwxyz", runner_secret="0123456789abcdef0123")
    values = secret_values(settings, {"AWS_SECRET_ACCESS_KEY": "aws-secret-value", "AWS_REGION": "us-east-1", "MY_TOKEN": "tok"})
    assert set(values) == {"shk_admin_abcdefghijklmnopqrstuvwxyz", "0123456789abcdef0123", "aws-secret-value"}  # "tok" is too short
