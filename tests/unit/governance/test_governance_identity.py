"""API keys, principals, agents and acting-as rules."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest, Forbidden, Unauthorized
from chalicelib.governance.identity import (
    Agent,
    Principal,
    Role,
    acting_agent_id,
    authenticate,
    require_role,
    validate_agent_id,
)
from chalicelib.governance.keys import KEY_PREFIX, generate_api_key, hash_api_key, key_id_of, verify_api_key
from chalicelib.governance.memory import InMemoryPrincipalsStore


def test_generated_keys_are_prefixed_random_and_stored_as_hashes():
    first, second = generate_api_key(), generate_api_key()
    assert first.api_key.startswith(KEY_PREFIX) and first.api_key != second.api_key
    assert key_id_of(first.api_key) == first.key_id
    assert first.key_hash == hash_api_key(first.api_key) and first.api_key not in first.key_hash
    assert len(first.api_key) > 40


def test_verification_accepts_only_the_exact_key():
    key = generate_api_key()
    assert verify_api_key(key.api_key, key.key_hash)
    assert not verify_api_key(key.api_key[:-1] + ("A" if key.api_key[-1] != "A" else "B"), key.key_hash)
    assert not verify_api_key(generate_api_key().api_key, key.key_hash)


@pytest.mark.parametrize("not_ours", ["", "shk_", "shk_nothex0000000000_" + "x" * 40, "Bearer abc", "sk_live_123"])
def test_foreign_strings_have_no_key_id(not_ours):
    assert key_id_of(not_ours) is None


def _store_with_key(role: Role = Role.PUBLISHER, agent_id: str | None = None):
    store = InMemoryPrincipalsStore()
    material = generate_api_key()
    principal = Principal(key_id=material.key_id, role=role, name="ci", agent_id=agent_id)
    store.put_key(principal, material.key_hash)
    return store, material, principal


def test_authenticate_finds_the_principal_and_refuses_revoked_keys():
    store, material, principal = _store_with_key()
    assert authenticate(material.api_key, store) == principal
    store.revoke_key(material.key_id)
    with pytest.raises(Unauthorized, match="revoked"):
        authenticate(material.api_key, store)


@pytest.mark.parametrize("api_key", [None, "", "garbage", "shk_0123456789abcdef_" + "x" * 43])
def test_missing_or_unknown_keys_are_unauthorized(api_key):
    store, _, _ = _store_with_key()
    with pytest.raises(Unauthorized):
        authenticate(api_key, store)


def test_a_forged_secret_for_a_real_key_id_is_unauthorized():
    store, material, _ = _store_with_key()
    forged = f"{KEY_PREFIX}{material.key_id}_{'A' * 43}"
    with pytest.raises(Unauthorized, match="unknown API key"):
        authenticate(forged, store)


def test_bootstrap_admin_key():
    store = InMemoryPrincipalsStore()
    key = "let-me-in-please-" + "x" * 16
    admin = authenticate(key, store, bootstrap_admin_key=key)
    assert admin.role is Role.ADMIN
    with pytest.raises(Unauthorized):
        authenticate("let-me-in", store, bootstrap_admin_key=key)


def test_a_bootstrap_key_shorter_than_32_characters_is_never_accepted():
    short = "x" * 31
    with pytest.raises(Unauthorized):
        authenticate(short, InMemoryPrincipalsStore(), bootstrap_admin_key=short)


@pytest.mark.parametrize("agent_id", ["bot-1", "A", "team.bot_7", "x" * 64])
def test_valid_agent_ids(agent_id):
    assert validate_agent_id(agent_id) == agent_id


@pytest.mark.parametrize("agent_id", ["", "-bot", "bot 1", "bot#1", "x" * 65, "bot/1", None, 7])
def test_invalid_agent_ids_say_what_is_allowed(agent_id):
    with pytest.raises(BadRequest, match="agent_id must be 1-64 characters"):
        validate_agent_id(agent_id)
    with pytest.raises(BadRequest):
        Agent(agent_id=agent_id, maturity="INTERN")


def test_only_agent_keys_carry_an_agent_id():
    with pytest.raises(BadRequest):
        Principal(key_id="k", role="agent", name="bot")
    with pytest.raises(BadRequest, match="only agent keys"):
        Principal(key_id="k", role="admin", name="ops", agent_id="bot-1")
    assert Principal(key_id="k", role="agent", name="bot", agent_id="bot-1").actor == "agent:bot-1"


def test_agent_keys_act_only_as_their_own_agent():
    bot = Principal(key_id="k1", role=Role.AGENT, name="bot", agent_id="bot-1")
    admin = Principal(key_id="k2", role=Role.ADMIN, name="ops")
    assert acting_agent_id(bot, None) == "bot-1"
    assert acting_agent_id(bot, "bot-1") == "bot-1"
    with pytest.raises(Forbidden, match="cannot act as agent 'bot-2'"):
        acting_agent_id(bot, "bot-2")
    assert acting_agent_id(admin, "bot-2") == "bot-2"
    assert acting_agent_id(admin, None) is None


def test_require_role():
    bot = Principal(key_id="k1", role=Role.AGENT, name="bot", agent_id="bot-1")
    with pytest.raises(Forbidden, match="needs a key with role admin; this key.s role is agent"):
        require_role(bot, Role.ADMIN)
    assert require_role(bot, Role.ADMIN, Role.AGENT) is bot
