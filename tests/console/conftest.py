"""The admin console in a real browser: Debian's chromium and chromedriver, headless, through selenium,
against the local stack (``python -m chalicelib.local.stack``, as ``make run`` starts it) in a subprocess.

One stack and one browser per module. Without chromium/chromedriver (or selenium) the tests skip, saying
so, unless SKILLHARBOR_REQUIRE_BROWSER=1 (CI), where they fail. Screenshots go to
SKILLHARBOR_SCREENSHOT_DIR (default ``test-output/screenshots``, gitignored); their paths are printed at
the end of the run.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from index_support import Release, local_index

from chalicelib.local.child_stack import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 120.0
SCREENSHOT_DIR = Path(os.environ.get("SKILLHARBOR_SCREENSHOT_DIR") or PROJECT_ROOT / "test-output" / "screenshots")
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
#: the packages the local index serves (tiny real wheels): what the approval stories import
RELEASES = [Release("harbor-tinycalc", "1.0.0"), Release("harbor-rejectme", "2.0.0")]
VIEWER_ZONE = "America/New_York"
_shots: list[Path] = []


def _need(reason: str) -> None:
    if os.environ.get("SKILLHARBOR_REQUIRE_BROWSER") == "1":
        pytest.fail(f"SKILLHARBOR_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(f"no browser for the console tests: {reason} (apt-get install chromium chromium-driver; make system-deps does)")


def _browser_paths() -> tuple[str, str]:
    browser = next((p for p in map(shutil.which, CHROMIUM_NAMES) if p), None)
    driver = shutil.which("chromedriver") or next((p for p in ("/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver") if os.path.exists(p)), None)
    if browser is None:
        _need("chromium is not installed")
    if driver is None:
        _need("chromedriver is not installed (Debian: chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        _need("selenium is not installed (make install)")
    return str(browser), str(driver)


@dataclass
class ConsoleStack:
    api_url: str
    admin_key: str
    log_path: Path
    has_runner: bool
    index_url: str = ""
    keys: dict[str, str] = field(default_factory=dict)

    def call(self, method: str, path: str, body: Any = None, *, key: str | None = None, content_type: str = "application/json") -> tuple[int, Any]:
        data = None if body is None else (body.encode() if isinstance(body, str) else json.dumps(body).encode())
        request = urllib.request.Request(self.api_url + path, data=data, method=method,
                                         headers={"Authorization": f"Bearer {key or self.admin_key}", "Content-Type": content_type})  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def import_skill(self, text: str) -> dict[str, Any]:
        status, body = self.call("POST", "/api/skills", text, content_type="text/markdown")
        assert status == 202, body
        return body

    def wait_status(self, skill_id: str, wanted: set[str], timeout: float = 180.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        skill: dict[str, Any] = {}
        while time.monotonic() < deadline:
            status, skill = self.call("GET", f"/api/skills/{skill_id}")
            if status == 200 and skill.get("status") in wanted:
                return skill
            time.sleep(0.3)
        raise AssertionError(f"skill {skill_id} did not reach {wanted}: {skill}\n--- stack log ---\n{self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join([line for line in text.splitlines() if '"POST / HTTP' not in line][-lines:])


@contextlib.contextmanager
def _running_stack(log_path: Path, index_url: str, with_runner: bool) -> Iterator[ConsoleStack]:
    admin_key = "shk_admin_console-tests-" + secrets.token_hex(12)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKILLHARBOR_", "AWS_"))}
    env.update(PYTHONUNBUFFERED="1", SKILLHARBOR_ADMIN_KEY=admin_key, SKILLHARBOR_INDEX_URL=index_url)
    for name in ("SKILLHARBOR_BASE_IMAGE_TAG", "SKILLHARBOR_BASE_IMAGE"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    command = [sys.executable, "-m", "chalicelib.local.stack", "--moto-port", str(free_port()), "--api-port", str(api_port := free_port())]
    command += ["--runner-port", str(free_port())] if with_runner else ["--no-runner"]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    stack = ConsoleStack(f"http://127.0.0.1:{api_port}", admin_key, log_path, with_runner, index_url)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"local stack exited with {process.returncode}:\n{stack.log_tail(60)}")
            try:
                with urllib.request.urlopen(stack.api_url + "/api/health", timeout=3):
                    break
            except urllib.error.HTTPError:
                break  # 503 degraded is an answer: the API is up
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"local stack not up after {STARTUP_SECONDS}s:\n{stack.log_tail(60)}")
            time.sleep(0.3)
        yield stack
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser_paths() -> tuple[str, str]:
    return _browser_paths()


@pytest.fixture(scope="module")
def stack(browser_paths: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleStack]:
    with local_index(RELEASES) as index:
        # no runner worker: the console is under test, not the Docker engine (and the builder downloads only
        # over https, which this test index does not speak); imports without packages still reach ready
        with _running_stack(tmp_path_factory.mktemp("console-stack") / "stack.log", index.url, False) as running:
            yield running


@pytest.fixture(scope="module")
def browser(browser_paths: tuple[str, str]) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000", "--disable-gpu",
                     "--no-first-run", "--disable-background-networking", "--disable-component-update"):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # a viewer far from UTC, so that the tests see times converted to the viewer's zone
    driver = webdriver.Chrome(service=Service(driver_path, env={**os.environ, "TZ": VIEWER_ZONE}), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(browser: Any, request: pytest.FixtureRequest) -> Callable[[str], Path]:
    def take(label: str) -> Path:
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{request.node.name}-{label}.png"
        browser.save_screenshot(str(path))
        _shots.append(path)
        return path

    return take


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _shots:
        terminalreporter.section("console screenshots")
        for path in _shots:
            terminalreporter.write_line(str(path))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    report = yield
    if report.when == "call" and report.failed and "browser" in getattr(item, "funcargs", {}):
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOT_DIR / f"{item.name}-FAILED.png"
        driver = item.funcargs["browser"]
        try:
            driver.save_screenshot(str(path))
            _shots.append(path)
            logs = [entry["message"] for entry in driver.get_log("browser")][-15:]
            report.sections.append(("console browser", f"screenshot: {path}\npage: {driver.current_url}\nbrowser log:\n" + "\n".join(logs)))
        except Exception as error:  # the browser itself may be what failed
            report.sections.append(("console browser", f"no screenshot: {error}"))
    return report
