"""Script skills on the real engine: a skill folder with bundled scripts and a requirements.txt (pypdf),
run as commands on files in a workspace; and the caps and bad input around command runs."""

from __future__ import annotations

import base64
import io
import json
import time
import zipfile
from urllib.parse import quote

import pytest
from chalice.test import Client
from pypdf import PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, FloatObject, NameObject, NumberObject, TextStringObject

from stack_support import ADMIN_HEADERS, Stack

SKILL_MD = b"""---
name: pdf-forms
description: Lists and fills the form fields of a PDF with the bundled scripts (pypdf).
license: MIT
---
# PDF forms

1. `python scripts/list_fields.py form.pdf fields.json` writes the form's fields as JSON.
2. Put the values into `values.json` (field name -> text), then
   `python scripts/fill_fields.py form.pdf values.json filled.pdf`.
"""

LIST_FIELDS = """import json, sys
from pypdf import PdfReader

reader = PdfReader(sys.argv[1])
fields = {name: {"type": str(field.get("/FT")), "value": field.get("/V")} for name, field in (reader.get_fields() or {}).items()}
with open(sys.argv[2], "w") as out:
    json.dump(fields, out, indent=2, default=str)
print(f"{len(fields)} field(s)")
"""

FILL_FIELDS = """import json, os, sys
from pypdf import PdfReader, PdfWriter

writer = PdfWriter(clone_from=PdfReader(sys.argv[1]))
values = json.load(open(sys.argv[2]))
for page in writer.pages:
    writer.update_page_form_field_values(page, values, auto_regenerate=False)
os.makedirs(os.path.dirname(sys.argv[3]) or ".", exist_ok=True)
writer.write(sys.argv[3])
print("filled", ", ".join(sorted(values)))
"""


def _skill_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("pdf-forms/SKILL.md", SKILL_MD)
        archive.writestr("pdf-forms/requirements.txt", "pypdf==7.1.1\n")
        archive.writestr("pdf-forms/scripts/list_fields.py", LIST_FIELDS)
        archive.writestr("pdf-forms/scripts/fill_fields.py", FILL_FIELDS)
    return buffer.getvalue()


def fillable_pdf(names: list[str]) -> bytes:
    """A one-page PDF with an AcroForm text field per name (built from pypdf's generic objects)."""
    writer = PdfWriter()
    page = writer.add_blank_page(width=300, height=300)
    fields = ArrayObject()
    for index, name in enumerate(names):
        widget = DictionaryObject({
            NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Widget"),
            NameObject("/FT"): NameObject("/Tx"), NameObject("/T"): TextStringObject(name),
            NameObject("/Rect"): ArrayObject([FloatObject(20), FloatObject(250 - 40 * index), FloatObject(200), FloatObject(270 - 40 * index)]),
            NameObject("/F"): NumberObject(4), NameObject("/P"): page.indirect_reference,
            NameObject("/DA"): TextStringObject("/Helv 10 Tf 0 g"),
        })  # fmt: skip
        reference = writer._add_object(widget)
        fields.append(reference)
    page[NameObject("/Annots")] = ArrayObject(list(fields))
    writer._root_object[NameObject("/AcroForm")] = DictionaryObject({
        NameObject("/Fields"): fields, NameObject("/NeedAppearances"): NameObject("/true"),
    })  # fmt: skip
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _call(client, method: str, path: str, body=None, headers=None, *, raw: bytes | None = None) -> tuple[int, dict]:
    headers = dict(headers or ADMIN_HEADERS)
    if raw is not None:
        response = getattr(client.http, method)(path, body=raw, headers={**headers, "Content-Type": "application/octet-stream"})
    elif body is not None:
        response = getattr(client.http, method)(path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
    else:
        response = getattr(client.http, method)(path, headers=headers)
    try:
        return response.status_code, json.loads(response.body or b"{}")
    except ValueError:
        return response.status_code, {"raw": response.body}


def _command(client, skill: str, body: dict, headers: dict) -> tuple[int, dict]:
    status, result = _call(client, "post", f"/api/skills/{skill}/commands", body, headers)
    deadline = time.monotonic() + 300
    while status == 202 and time.monotonic() < deadline:
        time.sleep(0.5)
        status, result = _call(client, "get", result["result_url"], headers=headers)
    return status, result


@pytest.fixture
def pdf_skill(docker_stack: Stack):
    with Client(docker_stack.app) as client:
        assert _call(client, "post", "/api/packages/approve", {"package_name": "pypdf", "min_maturity": "INTERN"})[0] == 201
        response = client.http.post("/api/skills", body=_skill_zip(), headers={**ADMIN_HEADERS, "Content-Type": "application/zip"})
        assert response.status_code == 202, response.body
        record = docker_stack.wait_for_import(json.loads(response.body)["import_id"], timeout=900)
        assert record["status"] == "SUCCEEDED", record
        status, agent = _call(client, "post", "/api/agents", {"agent_id": "form-filler", "maturity": "INTERN"})
        status, other = _call(client, "post", "/api/agents", {"agent_id": "someone-else", "maturity": "INTERN"})
        yield client, {"Authorization": f"Bearer {agent['api_key']}"}, {"Authorization": f"Bearer {other['api_key']}"}


def test_list_then_fill_a_pdf_form_in_a_workspace(pdf_skill, docker_stack: Stack, docker_client) -> None:
    client, agent, other = pdf_skill
    status, workspace = _call(client, "post", "/api/workspaces", {"skill_id": "pdf-forms", "ttl_seconds": 600, "size_mb": 8}, agent)
    assert status == 201, workspace
    ws = workspace["workspace_id"]
    form = fillable_pdf(["name", "city"])
    assert _call(client, "put", f"/api/workspaces/{ws}/files/{quote('in/form.pdf', safe='')}", raw=form, headers=agent)[0] == 201

    status, listed = _command(client, "pdf-forms", {"workspace_id": ws, "argv": ["python", "scripts/list_fields.py", "in/form.pdf",
                                                    "fields.json"], "collect": ["*.json"]}, agent)  # fmt: skip
    assert status == 200 and listed["status"] == "ok", listed
    assert listed["stdout"] == "2 field(s)\n" and listed["exit_code"] == 0
    fields = json.loads(base64.b64decode(listed["files"]["fields.json"]))
    assert sorted(fields) == ["city", "name"] and fields["name"]["type"] == "/Tx"

    values = {"name": "Ada Lovelace", "city": "London"}
    status, filled = _command(client, "pdf-forms", {
        "workspace_id": ws, "argv": ["python", "scripts/fill_fields.py", "in/form.pdf", "values.json", "out/filled.pdf"],
        "files": {"values.json": base64.b64encode(json.dumps(values).encode()).decode()}, "collect": ["out/*.pdf"],
    }, agent)  # fmt: skip
    assert status == 200 and filled["status"] == "ok", filled
    assert list(filled["files"]) == ["out/filled.pdf"]
    reader = PdfReader(io.BytesIO(base64.b64decode(filled["files"]["out/filled.pdf"])))
    assert {name: field.get("/V") for name, field in reader.get_fields().items()} == values

    # the files persisted between the two commands (each in a fresh container) and are readable one by one
    status, described = _call(client, "get", f"/api/workspaces/{ws}", headers=agent)
    assert {f["path"] for f in described["files"]} == {"in/form.pdf", "fields.json", "values.json", "out/filled.pdf"}
    response = client.http.get(f"/api/workspaces/{ws}/files/{quote('out/filled.pdf', safe='')}",
                               headers={**agent, "Accept": "application/octet-stream"})  # fmt: skip
    assert response.status_code == 200 and response.body == base64.b64decode(filled["files"]["out/filled.pdf"])

    # another agent does not learn it exists
    assert _call(client, "get", f"/api/workspaces/{ws}", headers=other)[0] == 404
    status, body = _command(client, "pdf-forms", {"workspace_id": ws, "argv": ["ls"]}, other)
    assert status == 404, body
    assert _call(client, "delete", f"/api/workspaces/{ws}", headers=other)[0] == 404

    assert _call(client, "delete", f"/api/workspaces/{ws}", headers=agent)[0] == 200
    assert _call(client, "get", f"/api/workspaces/{ws}", headers=agent)[0] == 404
    assert docker_stack_has_no_workspace_files(ws)


def docker_stack_has_no_workspace_files(workspace_id: str) -> bool:
    from chalicelib.store.workspaces import WorkspaceStore

    return WorkspaceStore().sizes(workspace_id) == {} and WorkspaceStore().get(workspace_id) is None


def test_bad_input_and_caps_get_clear_answers(pdf_skill) -> None:
    client, agent, _ = pdf_skill
    cases = [
        ({"argv": "python -V"}, 400, "argv"),
        ({"argv": ["python", 3]}, 400, "argv"),
        ({"argv": []}, 400, "argv"),
        ({"argv": ["ls"], "files": {"../escape.txt": "eA=="}}, 400, ".."),
        ({"argv": ["ls"], "files": {"/etc/passwd": "eA=="}}, 400, "relative"),
        ({"argv": ["ls"], "collect": ["../*"]}, 400, "collect"),
        ({"argv": ["ls"], "collect": ["/etc/*"]}, 400, "collect"),
        ({"argv": ["ls"], "env": {"LD_PRELOAD": "/tmp/x.so"}}, 400, "LD_PRELOAD"),
        ({"argv": ["ls"], "files": {"a.txt": "not base64!"}}, 400, "base64"),
    ]
    for body, expected, word in cases:
        status, answer = _command(client, "pdf-forms", body, agent)
        assert status == expected and word in answer["message"], (body, answer)

    big = base64.b64encode(b"\0" * (20 * 1024 * 1024)).decode()
    status, answer = _command(client, "pdf-forms", {"argv": ["ls"], "files": {"big.bin": big}}, agent)
    assert status == 413 and "limit" in answer["message"], answer

    status, ran = _command(client, "pdf-forms", {"argv": ["no-such-tool", "--help"]}, agent)
    assert status == 200 and ran["status"] == "exit_nonzero" and ran["exit_code"] == 127
    assert "'no-such-tool' was not found" in ran["error"]

    # a collected file past the per-file cap (4 MiB), and a link out of the workspace: run statuses that say which
    status, ran = _command(client, "pdf-forms", {"argv": ["python", "-c", "open('big.out','wb').write(b'x' * (5 << 20))"],
                                                 "collect": ["big.out"]}, agent)  # fmt: skip
    assert status == 200 and ran["status"] == "collect_failed" and "big.out" in ran["error"] and ran["files"] == {}, ran
    status, ran = _command(client, "pdf-forms", {"argv": ["bash", "-c", "ln -s /etc/passwd passwd"], "collect": ["passwd"]}, agent)
    assert status == 200 and ran["status"] == "collect_failed" and "symbolic link" in ran["error"], ran

    # the workspace's cap holds against a command that tries to fill it
    status, ws = _call(client, "post", "/api/workspaces", {"skill_id": "pdf-forms", "size_mb": 2}, agent)
    status, ran = _command(client, "pdf-forms", {"workspace_id": ws["workspace_id"],
                                                 "argv": ["bash", "-c", "head -c 10000000 /dev/zero > fill"]}, agent)  # fmt: skip
    assert ran["status"] == "exit_nonzero" and "No space left on device" in ran["stderr"], ran
    status, described = _call(client, "get", f"/api/workspaces/{ws['workspace_id']}", headers=agent)
    assert described["used_bytes"] <= 2 * 1024 * 1024
    _call(client, "delete", f"/api/workspaces/{ws['workspace_id']}", headers=agent)


def test_expired_workspaces_answer_404_and_the_schedule_removes_them(pdf_skill) -> None:
    from chalicelib.store.workspaces import WorkspaceStore

    client, agent, _ = pdf_skill
    status, ws = _call(client, "post", "/api/workspaces", {"skill_id": "pdf-forms", "ttl_seconds": 1}, agent)
    workspace_id = ws["workspace_id"]
    assert _call(client, "put", f"/api/workspaces/{workspace_id}/files/a.txt", raw=b"hello", headers=agent)[0] == 201
    time.sleep(2.1)  # past its one-second TTL (expiry is rounded up to a whole second)
    status, body = _command(client, "pdf-forms", {"workspace_id": workspace_id, "argv": ["ls"]}, agent)
    assert status == 404 and "expired" in body["message"], body
    from chalicelib.api.commands import scheduled_cleanup

    assert workspace_id in scheduled_cleanup()
    assert WorkspaceStore().get(workspace_id) is None
    assert docker_stack_has_no_workspace_files(workspace_id)


def test_a_throwaway_workspace_leaves_nothing_behind(pdf_skill) -> None:
    client, agent, _ = pdf_skill
    status, ran = _command(client, "pdf-forms", {"argv": ["bash", "-c", "cat > echo.txt; wc -c < echo.txt"], "stdin": "twelve bytes",
                                                 "collect": ["echo.txt"]}, agent)  # fmt: skip
    assert status == 200 and ran["status"] == "ok" and ran["stdout"].strip() == "12", ran
    assert base64.b64decode(ran["files"]["echo.txt"]) == b"twelve bytes" and ran["workspace_id"] is None
    from chalicelib.store.workspaces import WorkspaceStore

    store = WorkspaceStore()
    leftovers = [i for i in store.table.scan()["Items"] if str(i["pk"]).startswith("workspace#")]
    assert leftovers == []


def _workspace_leftovers() -> list:
    from chalicelib.store.workspaces import WorkspaceStore

    from chalicelib.settings import get_settings
    from chalicelib.store.blobs import s3_client

    records = [i["pk"] for i in WorkspaceStore().table.scan()["Items"] if str(i["pk"]).startswith("workspace#")]
    files = s3_client().list_objects_v2(Bucket=get_settings().artifacts_bucket, Prefix="workspaces/").get("Contents", [])
    return records + [f["Key"] for f in files]


@pytest.mark.parametrize("inline_kb", [160, 4, 1], ids=["all-inline", "answer-through-the-store", "all-through-the-store"])
def test_throwaway_files_come_back_whole_whichever_way_they_travel(pdf_skill, monkeypatch, inline_kb) -> None:
    """Small throwaway files ride in the job and the answer; past SKILLHARBOR_COMMAND_INLINE_KB they go through
    the workspace store (the 2 KiB sent, the 4 KiB collected, or both): the caller sees no difference, and
    nothing is left behind."""
    monkeypatch.setenv("SKILLHARBOR_COMMAND_INLINE_KB", str(inline_kb))
    client, agent, _ = pdf_skill
    data = bytes(range(256)) * 8  # 2 KiB
    body = {"argv": ["bash", "-c", "cat in.bin in.bin > out/twice.bin; wc -c < out/twice.bin"], "files": {"in.bin": base64.b64encode(data).decode()},
            "collect": ["out/*"]}  # fmt: skip
    body["argv"][2] = "mkdir out && " + body["argv"][2]
    status, ran = _command(client, "pdf-forms", body, agent)
    assert status == 200 and ran["status"] == "ok" and ran["stdout"].strip() == "4096", ran
    assert base64.b64decode(ran["files"]["out/twice.bin"]) == data * 2 and ran["workspace_id"] is None
    assert _workspace_leftovers() == []
