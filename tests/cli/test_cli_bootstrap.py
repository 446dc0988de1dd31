"""The bootstrap admin key as `make run` generates it: usable at once, then retired by an admin."""

from __future__ import annotations

import json


def test_the_generated_admin_key_works_until_an_admin_retires_it(run_fresh_cli):
    bootstrap = run_fresh_cli.stack.admin_key
    assert len(bootstrap) >= 32
    run_fresh_cli("skills", "list")  # the printed key is usable as printed
    refused = run_fresh_cli("keys", "revoke", "bootstrap-admin", expect=1)
    assert "create another admin key first" in refused.stderr
    admin = json.loads(run_fresh_cli("keys", "create", "--role", "admin", "--name", "ops", "--json").stdout)
    run_fresh_cli("keys", "revoke", "bootstrap-admin", SKILLHARBOR_API_KEY=admin["api_key"])
    retired = run_fresh_cli("skills", "list", expect=1)  # still in the stack's environment, refused all the same
    assert "retired" in retired.stderr
    run_fresh_cli("skills", "list", SKILLHARBOR_API_KEY=admin["api_key"])
    last = run_fresh_cli("keys", "revoke", admin["key_id"], expect=1, SKILLHARBOR_API_KEY=admin["api_key"])
    assert "last admin key" in last.stderr
    events = json.loads(run_fresh_cli("audit", "--action", "key.revoke", "--json", SKILLHARBOR_API_KEY=admin["api_key"]).stdout)
    assert [e["detail"].get("bootstrap") for e in events["events"]] == [True]
