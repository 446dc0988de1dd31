"""Declared network hosts: the three forms, wildcards, and every kind of bad entry listed at once."""

from __future__ import annotations

import pytest

from chalicelib.errors import InvalidSkill
from chalicelib.skills import parse_skill_md
from chalicelib.skills.network import HostPattern, parse_host_entry


def skill_md(frontmatter: str) -> bytes:
    return f"---\nname: Weather\ndescription: Calls an API\n{frontmatter.strip()}\n---\n# Weather\n".encode()


def problems_of(data: bytes) -> list[str]:
    with pytest.raises(InvalidSkill) as caught:
        parse_skill_md(data)
    return caught.value.problems


def test_seed_form_network_list_is_normalised_and_sorted() -> None:
    skill = parse_skill_md(skill_md("network:\n  - API.Weather.example.\n  - tiles.example.org:8443\n  - '*.cdn.example.net'"))
    assert skill.network == ["*.cdn.example.net", "api.weather.example", "tiles.example.org:8443"]


def test_agent_skills_metadata_string_is_split_on_commas_and_spaces() -> None:
    skill = parse_skill_md(skill_md("metadata:\n  network: 'api.example.com:443, hooks.example.com  api.example.com:443'"))
    assert skill.network == ["api.example.com:443", "hooks.example.com"]


def test_openclaw_metadata_names_hosts() -> None:
    skill = parse_skill_md(skill_md('metadata: {"openclaw": {"network": ["api.github.com:443"]}}'))
    assert skill.network == ["api.github.com:443"]


def test_a_skill_without_a_declaration_gets_no_hosts() -> None:
    assert parse_skill_md(skill_md("license: MIT")).network == []


def test_every_bad_entry_is_listed() -> None:
    problems = problems_of(skill_md(
        "network:\n  - https://api.example.com/v1\n  - '*'\n  - 10.0.0.5\n  - 127.0.0.1:8080\n  - 169.254.169.254\n"
        "  - '[::1]:443'\n  - 'api.*.example.com'\n  - example.com:70000\n  - localhost\n  - metadata.google.internal\n"
        "  - 'bad_name!.com'\n  - 12"
    ))
    text = "\n".join(problems)
    assert len(problems) == 12, text
    for needle in ("is a URL", "bare '*'", "private", "loopback", "link-local", "leading label", "1 to 65535",
                   "this machine", "not a valid host name", "must be a host name string"):
        assert needle in text, needle


def test_network_of_the_wrong_type_is_refused() -> None:
    assert any("network must be a list" in problem for problem in problems_of(skill_md("network: {a: 1}")))


@pytest.mark.parametrize(
    ("pattern", "name", "port", "expected"),
    [
        ("*.example.com", "a.example.com", 443, True),
        ("*.example.com", "a.b.example.com", 80, True),
        ("*.example.com", "example.com", 443, False),
        ("*.example.com", "badexample.com", 443, False),
        ("api.example.com:8443", "api.example.com", 443, False),
        ("api.example.com:8443", "API.example.com.", 8443, True),
    ],
)
def test_patterns_match_hosts_and_ports(pattern: str, name: str, port: int, expected: bool) -> None:
    parsed, problem = parse_host_entry(pattern)
    assert problem is None and parsed is not None
    assert parsed.matches(name, port) is expected


def test_a_wildcard_covers_its_subdomains_but_a_name_covers_only_itself() -> None:
    wide = HostPattern(host="*.example.com")
    assert wide.covers(HostPattern(host="api.example.com", ports=(443,)))
    assert wide.covers(HostPattern(host="*.eu.example.com"))
    assert not HostPattern(host="api.example.com").covers(HostPattern(host="*.example.com"))
    assert not HostPattern(host="api.example.com", ports=(443,)).covers(HostPattern(host="api.example.com"))


def test_public_ip_literal_is_accepted() -> None:
    parsed, problem = parse_host_entry("93.184.216.34:443")
    assert problem is None and parsed is not None and parsed.ports == (443,)
