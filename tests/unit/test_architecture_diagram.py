"""docs/ARCHITECTURE.md shows the state machine as the ASL file defines it today."""

from __future__ import annotations

from pathlib import Path

from infra.diagram import mermaid

DOC = Path(__file__).resolve().parents[2] / "docs" / "ARCHITECTURE.md"


def test_architecture_diagram_matches_the_asl():
    text = DOC.read_text()
    embedded = text.split("<!-- state-machine:begin -->\n```mermaid\n", 1)[1].split("```\n<!-- state-machine:end -->", 1)[0]
    assert embedded == mermaid(), "regenerate with: python -m infra.diagram (and paste between the markers)"


def test_diagram_has_every_state_and_transition():
    diagram = mermaid()
    for state in ("Parse", "Resolve", "Check", "Scan", "Install", "Finalize", "RecordFailure", "AwaitingApproval"):
        assert f"    {state}" in diagram
    assert "Check --> ApprovalNeeded" in diagram and "Install -.->|States.ALL| InstallFailed" in diagram
