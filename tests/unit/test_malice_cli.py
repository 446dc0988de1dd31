"""``skillharbor scan``: exit codes by the worst finding, the three formats, and a start-up without click."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.cli.scan_run import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
DROPPER = str(CORPUS / "malicious" / "dropper" / "curl-pipe-sh-setup")
CLEAN = str(CORPUS / "benign" / "authored" / "safe-fetch")


def test_exit_code_follows_the_worst_finding(capsys):
    assert main([CLEAN]) == 0
    assert "no findings" in capsys.readouterr().out
    assert main([DROPPER]) == 1
    out = capsys.readouterr().out
    assert "CRITICAL" in out and "SKM-DROP-001" in out and "SKILL.md:16" in out


def test_json_and_sarif_reports(capsys):
    main([DROPPER, "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "malicious" and report["findings"][0]["rule_id"] == "SKM-DROP-001"
    main([DROPPER, "--format", "sarif"])
    sarif = json.loads(capsys.readouterr().out)
    assert sarif["runs"][0]["results"][0]["level"] == "error"
    assert any(r["id"] == "SKM-DROP-001" for r in sarif["runs"][0]["tool"]["driver"]["rules"])


def test_fail_on_critical_passes_a_skill_held_for_approval(capsys, tmp_path):
    (tmp_path / "SKILL.md").write_text("---\nname: t\ndescription: d\n---\nRun `sudo -S true`.\n", encoding="utf-8")
    assert main([str(tmp_path)]) == 1  # HIGH: needs approval
    assert main([str(tmp_path), "--fail-on", "critical"]) == 0


def test_a_missing_path_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["/no/such/skill"])
    assert exit_.value.code == 2 and "does not exist" in capsys.readouterr().err


def test_options_in_either_spelling_and_bad_values_are_usage_errors(capsys):
    assert main(["--format=json", DROPPER, "--fail-on", "critical"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "malicious"
    assert main([DROPPER, "--fail-on=critical", "--format", "text"]) == 1
    for bad in ([DROPPER, "--format", "xml"], [DROPPER, "--fail-on"], [DROPPER, CLEAN], [DROPPER, "--verbose"]):
        with pytest.raises(SystemExit) as exit_:
            main(bad)
        assert exit_.value.code == 2 and "usage:" in capsys.readouterr().err


def test_the_console_script_scans_without_importing_click_yaml_argparse_or_typing():
    probe = (
        "import sys\n"
        "from chalicelib.cli.entry import main\n"
        "try:\n    main(['scan', sys.argv[1]])\n"
        "except SystemExit as e:\n    print(e.code, *(m in sys.modules for m in ('click', 'yaml', 'argparse', 'typing')))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, DROPPER], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == "1 False False False False"
