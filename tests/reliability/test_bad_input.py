"""Hand-picked hostile input: every case gets a 4xx whose message names what was wrong.

The property-based sweep over every route is in test_api_fuzz.py; these are
the inputs an attacker or a careless client sends on purpose.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from chalice.test import Client

from stack_support import ADMIN_HEADERS

from reliability_support import call

# one stack for the whole module: every case here is refused before anything is stored
pytestmark = pytest.mark.usefixtures("module_stack")


@pytest.fixture(scope="module")
def module_stack():
    with pytest.MonkeyPatch.context() as monkeypatch:
        from stack_support import FakeEngine, running_stack

        for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        for name in ("AWS_ENDPOINT_URL", "SKILLHARBOR_AWS_ENDPOINT_URL", "AWS_PROFILE"):
            monkeypatch.delenv(name, raising=False)
        with running_stack(monkeypatch, FakeEngine()) as stack:
            yield stack


@pytest.fixture
def stack(module_stack):
    return module_stack


def raw(stack, method: str, path: str, body: bytes | str | None, content_type: str | None) -> tuple[int, Any]:
    headers = dict(ADMIN_HEADERS)
    if content_type:
        headers["Content-Type"] = content_type
    with Client(stack.app) as client:
        response = getattr(client.http, method.lower())(path, headers=headers, **({"body": body} if body is not None else {}))
    try:
        return response.status_code, json.loads(response.body)
    except ValueError:
        return response.status_code, response.body


def message_of(body: Any) -> str:
    """Everything an error body says, as one string (our errors and Chalice's own)."""
    if isinstance(body, dict):
        return " ".join(str(v) for v in (body.get("message"), body.get("Message"), body.get("problems"), body.get("error"),
                                         body.get("Code")) if v)  # fmt: skip
    return body.decode(errors="replace") if isinstance(body, bytes) else str(body)


def assert_refused(status: int, body: Any, *words: str, statuses: tuple[int, ...] = (400,)) -> None:
    assert status in statuses, (status, body)
    text = message_of(body).lower()
    for word in words:
        assert word.lower() in text, (word, body)


def skill(frontmatter: str, code: str = "def execute():\n    return 1\n") -> bytes:
    return f"---\n{frontmatter}\n---\n```python\n{code}```\n".encode()


def zipped(entries: dict[str, bytes], *, symlinks: tuple[str, ...] = ()) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (0o120777 << 16)  # a symlink entry
            archive.writestr(info, data)
    return buffer.getvalue()


GOOD_MD = skill("name: Fine Skill\ndescription: fine")


# --- size, content type, JSON ---------------------------------------------------------------


def test_huge_json_body(stack):
    status, body = call(stack, "POST", "/api/agents", {"agent_id": "a", "maturity": "INTERN", "pad": "x" * 300_000})
    assert_refused(status, body, "bytes", "limit", statuses=(413,))  # payload_too_large, before any parsing


def test_huge_skill_md(stack):
    status, body = raw(stack, "POST", "/api/skills", skill("name: Big\ndescription: big") + b"#" * (2 * 1024 * 1024), "text/markdown")
    assert_refused(status, body, "bytes", statuses=(400, 413))


def test_huge_frontmatter(stack):
    status, body = raw(stack, "POST", "/api/skills", skill("name: Big\ndescription: " + "y" * 100_000), "text/markdown")
    assert_refused(status, body, "frontmatter", statuses=(400, 413))


def test_an_upload_in_a_type_it_does_not_take(stack):
    status, body = raw(stack, "POST", "/api/skills", b'{"agent_id": "a"}', "application/json")
    assert_refused(status, body, "media type", statuses=(415,))


JSON_DECLARED_AS = ["application/json", "text/plain", "application/x-www-form-urlencoded", "application/octet-stream",
                    "multipart/form-data; boundary=x", None]  # fmt: skip


@pytest.mark.parametrize("content_type", JSON_DECLARED_AS, ids=lambda c: str(c).split(";")[0])
def test_a_json_route_reads_a_json_body_whatever_type_it_declares(stack, content_type):
    """curl -d '{...}' declares application/x-www-form-urlencoded: the seed documents' calls do that."""
    agent_id = "ct-" + str(content_type).split(";")[0].replace("/", "-").replace(".", "-")[:40]
    status, body = raw(stack, "POST", "/api/agents", json.dumps({"agent_id": agent_id, "maturity": "INTERN"}), content_type)
    assert status == 201 and body["agent_id"] == agent_id, (status, body)


@pytest.mark.parametrize("content_type", JSON_DECLARED_AS, ids=lambda c: str(c).split(";")[0])
def test_a_body_that_is_not_json_is_refused_naming_the_format_expected(stack, content_type):
    status, body = raw(stack, "POST", "/api/packages/approve", b"package_name=numpy&min_maturity=INTERN", content_type)
    assert_refused(status, body, "not valid json", "takes a json object", "content-type: application/json")
    assert (content_type or "no content-type").split(";")[0] in message_of(body).lower()


@pytest.mark.parametrize(
    "payload, words",
    [(b"{not json", ("not valid json",)), (b"[1, 2]", ("json object", "list")), (b'"agent"', ("json object", "str")),
     (b"", ("empty",)), (b"\xff\xfe\x00garbage", ("not valid json",)), (b'{"agent_id": "agent-a", "maturity": NaN}', ("maturity",))],
    ids=["broken", "array", "string", "empty", "bad-utf8", "nan"],
)  # fmt: skip
def test_invalid_json(stack, payload, words):
    status, body = raw(stack, "POST", "/api/agents", payload, "application/json")
    assert_refused(status, body, *words)


def test_zip_content_type_without_a_zip(stack):
    status, body = raw(stack, "POST", "/api/skills", GOOD_MD, "application/zip")
    assert_refused(status, body, "not a zip")


def test_wrong_json_types(stack):
    status, body = call(stack, "POST", "/api/agents", {"agent_id": ["a"], "maturity": {"level": 1}})
    assert_refused(status, body, "agent")
    status, body = call(stack, "POST", "/api/packages/request", {"package_name": 5, "version": "1", "reason": "r"})
    assert_refused(status, body, "package_name", "string")
    status, body = call(stack, "PATCH", "/api/agents/agent-a", {"maturity": "INTERN", "expected_version": "two"})
    assert_refused(status, body, "expected_version")
    # found by the fuzz sweep: a non-string package name used to answer 500
    status, body = call(stack, "POST", "/api/packages/approve", {"package_name": [], "min_maturity": "INTERN"})
    assert_refused(status, body, "package_name", "string")
    status, body = call(stack, "POST", "/api/packages/ban", {"package_name": {"a": 1}, "reason": "r"})
    assert_refused(status, body, "package_name", "string")


# --- unicode and control characters ---------------------------------------------------------


@pytest.mark.parametrize("agent_id", ["agent\x00one", "agent\nbreak", "ag\u202eent", "agent-\U0001f600", "ＡＧＥＮＴ", "a" * 300, ""])
def test_agent_ids_with_control_or_unicode_characters(stack, agent_id):
    status, body = call(stack, "POST", "/api/agents", {"agent_id": agent_id, "maturity": "INTERN"})
    assert_refused(status, body, "agent")


@pytest.mark.parametrize("name", ["key\x07bell", "key\r\nX-Injected: 1", "k" * 500])
def test_key_names_with_control_characters_or_too_long(stack, name):
    status, body = call(stack, "POST", "/api/keys", {"role": "publisher", "name": name})
    assert_refused(status, body, "name")


@pytest.mark.parametrize("package", ["requests\x00", "ré-quests", "requests; rm -rf /", "../../etc/passwd", "a" * 300])
def test_package_names_that_are_not_names(stack, package):
    status, body = call(stack, "GET", f"/api/packages/check?agent_id=agent-a&version=1.0&package_name={_q(package)}")
    assert_refused(status, body, "package")


@pytest.mark.parametrize("name", ["Evil\x00Skill", "\u202eLIVE", "\U0001f600\U0001f600", "   "])
def test_skill_names_with_control_or_only_unusable_characters(stack, name):
    status, body = raw(stack, "POST", "/api/skills", skill(f"name: {json.dumps(name)}\ndescription: d"), "text/markdown")
    assert_refused(status, body, "name")


# --- path traversal ---------------------------------------------------------------------------


@pytest.mark.parametrize("skill_id", ["..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "a%00b", "UPPER", "x" * 100, "%E2%80%AE"])
def test_path_traversal_in_skill_ids(stack, skill_id):
    for method, path in (("GET", f"/api/skills/{skill_id}"), ("GET", f"/api/skills/{skill_id}/sbom"),
                         ("GET", f"/api/packages/{skill_id}/status")):  # fmt: skip
        status, body = raw(stack, method, path, None, None)
        assert_refused(status, body, "skill id", statuses=(400, 404))


@pytest.mark.parametrize("import_id", ["..", "imp-..%00", "imp-" + "g" * 20, "imp-" + "0" * 200])
def test_malformed_import_ids(stack, import_id):
    status, body = raw(stack, "GET", f"/api/imports/{import_id}", None, None)
    assert_refused(status, body, "import id")


def test_slashes_in_an_id_match_no_route(stack):
    """``/api/imports/imp-../../x`` is another path: the gateway refuses it before any view runs."""
    status, body = raw(stack, "GET", "/api/imports/imp-../../x", None, None)
    assert status == 403 and "Authorization" in message_of(body)  # API Gateway's answer for an unknown route


@pytest.mark.parametrize(
    "entries, symlinks, words",
    [
        ({"SKILL.md": GOOD_MD, "../evil.py": b"x = 1"}, (), ("..",)),
        ({"SKILL.md": GOOD_MD, "/etc/cron.d/evil": b"x"}, (), ("absolute",)),
        ({"SKILL.md": GOOD_MD, "scripts\\..\\..\\evil.py": b"x"}, (), ("backslash",)),
        ({"SKILL.md": GOOD_MD, "C:/evil.py": b"x"}, (), ("drive",)),
        ({"SKILL.md": GOOD_MD, "link": b"/etc/passwd"}, ("link",), ("symbolic link",)),
    ],
    ids=["dotdot", "absolute", "backslash", "drive-letter", "symlink"],
)
def test_path_traversal_in_zip_entries(stack, entries, symlinks, words):
    status, body = raw(stack, "POST", "/api/skills", zipped(entries, symlinks=symlinks), "application/zip")
    assert_refused(status, body, "invalid_skill", *words)


def test_zip_bomb_by_declared_size(stack):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("SKILL.md", GOOD_MD)
        archive.writestr("data.txt", b"\0" * (60 * 1024 * 1024))  # 60 MiB of zeros deflate to about 60 KiB
    status, body = raw(stack, "POST", "/api/skills", buffer.getvalue(), "application/zip")
    assert_refused(status, body, "would unpack to", "limit", statuses=(400, 413))


def test_zip_of_many_entries_is_refused_from_its_central_directory(stack):
    from zip_support import many_entry_zip

    for archive in (many_entry_zip(230_000, first=("SKILL.md", GOOD_MD)),  # 20 MB: 250 MB of ZipInfo objects if read
                    many_entry_zip(5_000, first=("SKILL.md", GOOD_MD), declare=1)):  # a lying end record  # fmt: skip
        status, body = raw(stack, "POST", "/api/skills", archive, "application/zip")
        assert_refused(status, body, "invalid_skill", "entries", "over the limit of 1000")


# --- YAML bombs and nesting -------------------------------------------------------------------

BILLION_LAUGHS = """name: Laughs
description: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]"""


def test_billion_laughs_in_frontmatter(stack):
    status, body = raw(stack, "POST", "/api/skills", skill(BILLION_LAUGHS), "text/markdown")
    assert_refused(status, body, "anchors")


@pytest.mark.parametrize("depth", [40, 5000])
def test_deeply_nested_frontmatter(stack, depth):
    nested = "[" * depth + "]" * depth
    status, body = raw(stack, "POST", "/api/skills", skill(f"name: Deep\ndescription: d\nmetadata: {nested}"), "text/markdown")
    assert_refused(status, body, "nest")


def test_python_object_tags_in_frontmatter(stack):
    status, body = raw(stack, "POST", "/api/skills", skill("name: Tag\ndescription: !!python/object/apply:os.system ['id']"),
                       "text/markdown")  # fmt: skip
    assert_refused(status, body, "tag")


# --- requirement strings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "requirement, words",
    [
        ("--index-url http://evil.example/simple", ("--index-url",)),
        ("--extra-index-url=http://evil.example", ("--extra-index-url",)),
        ("-e git+https://evil.example/x.git", ("-e",)),
        ("-r other.txt", ("-r",)),
        ("--trusted-host evil.example", ("--trusted-host",)),
        ("evil @ https://evil.example/evil-1.0-py3-none-any.whl", ("url",)),
        ("evil @ file:///etc/passwd", ("file:",)),
        ("git+https://github.com/x/y.git", ("git+https",)),
        ("requests[socks,../../x]", ("requests[socks,../../x]",)),
        ("numpy; os_name == 'nt' and", ("numpy; os_name",)),
        ("numpy; python_version >> '3'", ("numpy; python_version",)),
        ("numpy >=", ("numpy >=",)),
        ("numpy\x00", ("numpy",)),
        ("./local/path", ("./local/path",)),
    ],
)
def test_hostile_requirement_strings_are_refused_naming_the_line(stack, requirement, words):
    status, body = call(stack, "POST", "/api/packages/scan", {"requirements": [requirement]})
    assert_refused(status, body, *words)
    md = skill(f"name: Req Skill\ndescription: d\npackages:\n  - {json.dumps(requirement)}")
    status, body = raw(stack, "POST", "/api/skills", md, "text/markdown")
    assert_refused(status, body, "invalid_skill", *words)


@pytest.mark.parametrize("requirement", ["six[extra]>=1.16", "six>=1.16; python_version >= '3.10'", "six ; sys_platform != 'win32'"])
def test_extras_and_markers_are_accepted_in_skills(stack, requirement):
    md = skill(f"name: Fine Req\ndescription: d\npackages:\n  - {json.dumps(requirement)}")
    status, body = raw(stack, "POST", "/api/skills", md, "text/markdown")
    assert status == 202, body


def _q(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


# --- operations that queue runner jobs: refused before any job is queued -----------------------


@pytest.mark.parametrize(
    "method, path, payload, words",
    [
        ("POST", "/api/images/cleanup", {"ttl_days": -1}, ("ttl_days",)),
        ("POST", "/api/images/cleanup", {"ttl_days": "never"}, ("ttl_days",)),
        ("POST", "/api/images/cleanup", {"ttl_days": True}, ("ttl_days",)),
        ("POST", "/api/packages/install", {"skill_id": "..", "requirements": []}, ("skill id",)),
        ("POST", "/api/packages/install", {"skill_id": "ok", "agent_id": "a", "requirements": "six"}, ("requirements", "list")),
        ("POST", "/api/packages/install", {"skill_id": "ok", "agent_id": "a", "requirements": ["six", "--index-url http://evil"]},
         ("--index-url",)),
        ("POST", "/api/packages/install", {"skill_id": "ok", "requirements": ["six"]}, ("agent_id",)),
        ("POST", "/api/packages/execute", {"skill_id": "ok"}, ("code",)),
        ("POST", "/api/packages/execute", {"skill_id": "ok", "code": "x", "agent_id": "a"}, ("install",)),
        ("POST", "/api/skills/ok/execute", {"agent_id": "a", "inputs": [1, 2]}, ("inputs", "dictionary")),
        ("POST", "/api/skills/ok/execute", {"agent_id": "a", "inputs": {"blob": "x" * 300_000}}, ("bytes", "limit")),
        ("POST", "/api/skills/..%00/execute", {"agent_id": "a"}, ("skill id",)),
        ("DELETE", "/api/packages/%E2%80%AE", None, ("skill id",)),
    ],
)  # fmt: skip
def test_runner_backed_operations_validate_before_queueing(stack, method, path, payload, words):
    before = stack.sqs.get_queue_attributes(QueueUrl=stack.settings.runner_queue_url, AttributeNames=["All"])["Attributes"]
    status, body = call(stack, method, path, payload)
    assert_refused(status, body, *words, statuses=(400, 404, 413))
    after = stack.sqs.get_queue_attributes(QueueUrl=stack.settings.runner_queue_url, AttributeNames=["All"])["Attributes"]
    assert after["ApproximateNumberOfMessages"] == before["ApproximateNumberOfMessages"] == "0"
