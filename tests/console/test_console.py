"""The admin console, driven in headless chromium against the local stack: what an admin sees and does."""

from __future__ import annotations

import secrets
import time
from datetime import datetime
from zoneinfo import ZoneInfo
from typing import Any

import pytest
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

WAIT = 30  # seconds for the page to show what the API answered
IMPORT_WAIT = 240  # an import that builds an image on a shared, busy engine

XSS_NAME = "<img src=x onerror=alert(1)>"


def skill_md(name: str, *, packages: list[str] | None = None, code: str | None = None, description: str = "console test") -> str:
    lines = ["---", f'name: "{name}"', f'description: "{description}"']
    if packages:
        lines.append("packages: [" + ", ".join(f'"{p}"' for p in packages) + "]")
    body = code or "def execute() -> dict:\n    return {\"ok\": True}\n"
    return "\n".join(lines) + f"\n---\n# {name}\n\n```python\n{body}```\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def wait_for(browser: Any, css: str, timeout: float = WAIT) -> Any:
    return WebDriverWait(browser, timeout).until(ec.visibility_of_element_located((By.CSS_SELECTOR, css)))


def wait_text(browser: Any, css: str, text: str, timeout: float = WAIT) -> None:
    WebDriverWait(browser, timeout).until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def sign_in(browser: Any, stack: Any, key: str | None = None) -> None:
    browser.get(stack.api_url + "/console")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()  # a fresh page with no key: the sign-in form
    field = wait_for(browser, "#key")
    field.send_keys(key or stack.admin_key)
    browser.find_element(By.CSS_SELECTOR, "#login-form button").click()


def open_page(browser: Any, stack: Any, page: str) -> None:
    browser.get(f"{stack.api_url}/console#/{page}")


def assert_no_alert(browser: Any) -> None:
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 (the property raises when no dialog is open)


def test_the_console_is_served_with_a_policy_that_forbids_inline_script(stack):
    import urllib.request

    with urllib.request.urlopen(stack.api_url + "/console") as response:
        policy = response.headers["Content-Security-Policy"]
        html = response.read().decode()
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    assert "<script>" not in html  # the page's only script is a file of this origin


def test_a_wrong_key_is_refused_and_a_publisher_is_told_which_role_a_page_needs(stack, browser, screenshot):
    sign_in(browser, stack, "shk_not-a-key-" + secrets.token_hex(8))
    wait_text(browser, "#login-error", "That key was not accepted")
    assert len(browser.find_element(By.ID, "login-error").text) > len("That key was not accepted: ")  # the API's reason
    assert browser.execute_script("return sessionStorage.length") == 0  # a refused key is not kept
    assert "shk_" not in browser.current_url
    print(screenshot("wrong-key"))

    status, issued = stack.call("POST", "/api/agents", {"agent_id": unique("console-agent"), "maturity": "INTERN"})
    assert status == 201, issued
    sign_in(browser, stack, issued["api_key"])
    wait_for(browser, "#whoami")
    assert "shk_" not in browser.current_url
    open_page(browser, stack, "rules")
    box = wait_for(browser, "#rule-list .error")
    assert box.get_attribute("data-status") == "403"
    assert "This needs an admin or publisher key" in box.text and "signed in with an agent key" in box.text
    print(screenshot("agent-on-rules"))


@pytest.fixture
def admin(stack, browser):
    sign_in(browser, stack)
    wait_for(browser, "#whoami")
    return browser


def test_package_approval_story_the_import_resumes_past_check_and_scan(stack, admin, screenshot):
    skill_id = unique("console-approve")
    stack.import_skill(skill_md(skill_id, packages=["harbor-tinycalc==1.0.0"]))
    stack.wait_status(skill_id, {"pending_approval"})

    open_page(admin, stack, "requests")
    card = wait_for(admin, "#package-requests [data-package='harbor-tinycalc']")
    assert skill_id in card.text and "1.0.0" in card.text and "system" in card.text
    Select(card.find_element(By.NAME, "min_maturity")).select_by_value("INTERN")
    assert card.find_element(By.NAME, "specifier").get_attribute("value") == "==1.0.0"
    print(screenshot("request-waiting"))
    card.find_element(By.CSS_SELECTOR, "[data-action=approve]").click()
    wait_text(admin, "[data-package='harbor-tinycalc'] .notice", "Resumed import")
    wait_for(admin, f"[data-watch='{skill_id}'] [data-skill-status='importing']")
    print(screenshot("approved-resumed"))

    # the resumed import passed Check and Scan and waits for its image build (this stack runs no runner worker)
    skill = stack.call("GET", f"/api/skills/{skill_id}")[1]
    status, imported = stack.call("GET", f"/api/imports/{skill['import_id']}")
    deadline = time.monotonic() + WAIT
    while imported.get("current_step") != "install" and time.monotonic() < deadline:
        time.sleep(0.3)
        status, imported = stack.call("GET", f"/api/imports/{skill['import_id']}")
    assert imported.get("current_step") == "install", imported
    pending = stack.call("GET", "/api/packages/requests?status=pending")[1]["requests"]
    assert all(r["skill_id"] != skill_id for r in pending)  # the approval fulfilled the import's request

    open_page(admin, stack, f"skills/{skill_id}")
    wait_for(admin, "#pins-table")
    pins = admin.find_element(By.ID, "pins-table").text
    assert "harbor-tinycalc" in pins and "1.0.0" in pins
    assert len([w for w in pins.split() if len(w) == 64]) == 1  # the wheel's sha256, in full
    wait_text(admin, "#versions-table", "importing")
    open_page(admin, stack, "rules")
    wait_text(admin, "#rules-table", "harbor-tinycalc")
    print(screenshot("rule-listed"))


def test_rejection_blocks_the_waiting_import_with_the_reason(stack, admin, screenshot):
    skill_id = unique("console-reject")
    stack.import_skill(skill_md(skill_id, packages=["harbor-rejectme==2.0.0"]))
    stack.wait_status(skill_id, {"pending_approval"})

    open_page(admin, stack, "requests")
    card = wait_for(admin, f"#package-requests [data-package='harbor-rejectme']")
    card.find_element(By.NAME, "reason").send_keys("not needed for a calculator")
    card.find_element(By.CSS_SELECTOR, "[data-action=reject]").click()
    wait_text(admin, "[data-package='harbor-rejectme'] .notice", "Rejected harbor-rejectme")
    wait_for(admin, f"[data-watch='{skill_id}'] [data-skill-status='blocked']")
    assert "not needed for a calculator" in admin.find_element(By.CSS_SELECTOR, f"[data-watch='{skill_id}']").text
    print(screenshot("rejected"))
    assert stack.call("GET", f"/api/skills/{skill_id}")[1]["status"] == "blocked"


def test_code_approval_story_blocked_code_is_approved_and_the_skill_becomes_ready(stack, admin, screenshot):
    skill_id = unique("console-code")
    code = "import subprocess\n\ndef execute(cmd: str = 'true') -> dict:\n    return {'rc': subprocess.Popen(cmd, shell=True).wait()}\n"
    stack.import_skill(skill_md(skill_id, code=code))
    stack.wait_status(skill_id, {"blocked"})

    open_page(admin, stack, "requests")
    card = wait_for(admin, f"#code-approvals [data-blocked-skill='{skill_id}']")
    assert "HIGH" in card.text and "shell" in card.text.lower()
    card.find_element(By.NAME, "reason").send_keys("reviewed: runs only the command the agent passes")
    card.find_element(By.CSS_SELECTOR, "[data-action=approve-code]").click()
    wait_for(admin, f"[data-watch='{skill_id}'] [data-skill-status='ready']", timeout=IMPORT_WAIT)
    print(screenshot("code-approved-ready"))


def test_audit_filters_by_skill_action_and_time_in_pages(stack, admin, screenshot):
    skill_id = unique("console-audit")
    stack.import_skill(skill_md(skill_id))
    stack.wait_status(skill_id, {"ready"})

    open_page(admin, stack, "audit")
    form = wait_for(admin, "#audit-filters")
    form.find_element(By.NAME, "skill_id").send_keys(skill_id)
    form.find_element(By.NAME, "action").send_keys("import.step")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_for(admin, "#audit-table")
    rows = admin.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")
    assert rows and all(skill_id in r.text and "import.step" in r.text for r in rows)
    assert "skill_id=" in admin.current_url and "shk_" not in admin.current_url
    print(screenshot("audit-filtered"))

    # times are the viewer's: 2020-01-01 07:00 in New York is 12:00 UTC; up to then, nothing (said so)
    assert "times in America/New_York" in admin.find_element(By.ID, "who").text
    form = admin.find_element(By.ID, "audit-filters")
    admin.execute_script("arguments[0].value = '2020-01-01T07:00'", form.find_element(By.NAME, "until"))
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_text(admin, "#audit-list", "No audit event matches these filters.")
    assert "until=2020-01-01T12%3A00%3A00.000Z" in admin.current_url
    # and from a moment before the import (shown in the viewer's zone), its events again
    admin.execute_script("arguments[0].value = ''", admin.find_element(By.NAME, "until"))
    admin.execute_script("arguments[0].value = '2020-01-01T07:00'", admin.find_element(By.NAME, "since"))
    admin.find_element(By.CSS_SELECTOR, "#audit-filters button").click()
    wait_for(admin, "#audit-table")
    cell = admin.find_element(By.CSS_SELECTOR, "#audit-table tbody td")
    utc = datetime.fromisoformat(cell.get_attribute("title").replace("Z", "+00:00"))  # the tooltip: the UTC time
    local = utc.astimezone(ZoneInfo("America/New_York"))
    assert f"{local.hour % 12 or 12}:{local.minute:02d}:{local.second:02d}" in cell.text  # the cell: New York's
    assert "since=2020-01-01T12%3A00%3A00.000Z" in admin.current_url

    # the API's pages, two events each, walked with Older and back with Newer
    open_page(admin, stack, f"audit?skill_id={skill_id}&limit=2")
    wait_for(admin, "#audit-table")
    first = admin.find_element(By.CSS_SELECTOR, "#audit-table tbody").text
    assert len(admin.find_elements(By.CSS_SELECTOR, "#audit-table tbody tr")) == 2
    admin.find_element(By.CSS_SELECTOR, "[data-pager=older]").click()
    wait_text(admin, ".pager", "page 2")
    second = admin.find_element(By.CSS_SELECTOR, "#audit-table tbody").text
    assert second != first and all(skill_id in line for line in second.splitlines())
    print(screenshot("audit-page-2"))
    admin.find_element(By.CSS_SELECTOR, "[data-pager=newer]").click()
    wait_text(admin, ".pager", "page 1")
    assert admin.find_element(By.CSS_SELECTOR, "#audit-table tbody").text == first


def test_a_skill_named_like_html_is_shown_as_text(stack, admin, screenshot):
    imported = stack.import_skill(skill_md(XSS_NAME, description="<script>alert(2)</script>"))
    skill_id = imported["skill_id"]
    stack.wait_status(skill_id, {"ready"})

    open_page(admin, stack, "skills")
    wait_for(admin, f"#skills-table [data-skill='{skill_id}']")
    assert XSS_NAME in admin.find_element(By.ID, "skills-table").text
    open_page(admin, stack, f"skills/{skill_id}")
    wait_for(admin, "[data-skill-summary]")
    page = admin.find_element(By.ID, "page")
    assert XSS_NAME in page.text and "<script>alert(2)</script>" in page.text
    assert admin.execute_script("return document.querySelectorAll('#page img, #page script').length") == 0
    assert_no_alert(admin)
    print(screenshot("xss-name-as-text"))


def test_runs_page_filters_by_skill_and_says_when_nothing_ran(stack, admin, screenshot):
    open_page(admin, stack, "runs")
    form = wait_for(admin, "#run-filters")
    form.find_element(By.NAME, "skill_id").send_keys("console-never-ran")
    form.find_element(By.CSS_SELECTOR, "button").click()
    wait_text(admin, "#run-list", "No run has ended yet (with these filters).")
    assert "skill_id=console-never-ran" in admin.current_url
    print(screenshot("runs-empty"))
