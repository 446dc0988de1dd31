"""Draw the import state machine as a Mermaid flowchart, from the ASL file itself.

``python -m infra.diagram`` prints it; docs/ARCHITECTURE.md embeds the output
between markers, and a test fails when the two differ.
"""

from __future__ import annotations

import sys

from infra.template import lambda_name_for, load_asl

_SHAPES = {"Choice": ("{", "}"), "Succeed": ("([", "])"), "Fail": ("([", "])"), "Pass": ("[/", "/]")}


def mermaid(asl: dict | None = None) -> str:
    asl = asl or load_asl()
    lines = ["flowchart TD", f"    start((start)) --> {asl['StartAt']}"]
    for name, state in asl["States"].items():
        opening, closing = _SHAPES.get(state["Type"], ("[", "]"))
        label = name if state["Type"] != "Task" else f"{name}<br/><small>{_task_kind(state)}</small>"
        lines.append(f'    {name}{opening}"{label}"{closing}')
    for name, state in asl["States"].items():
        for choice in state.get("Choices", []):
            lines.append(f'    {name} -->|"{_condition(choice)}"| {choice["Next"]}')
        if "Default" in state:
            lines.append(f"    {name} -->|otherwise| {state['Default']}")
        if "Next" in state:
            lines.append(f"    {name} --> {state['Next']}")
        for catch in state.get("Catch", []):
            lines.append(f"    {name} -.->|{', '.join(catch['ErrorEquals'])}| {catch['Next']}")
    return "\n".join(lines) + "\n"


def _task_kind(state: dict) -> str:
    resource = state["Resource"]
    if "waitForTaskToken" in resource:
        function = lambda_name_for(state["Parameters"]["FunctionName"].strip("${}").replace("FunctionArn", ""))
        return f"Lambda {function} → runner queue, waits for the task token"
    return "Lambda " + lambda_name_for(resource.strip("${}").replace("FunctionArn", ""))


def _condition(choice: dict) -> str:
    variable = choice.get("Variable", "")
    for key, value in choice.items():
        if key not in ("Variable", "Next"):
            return f"{variable} {key} {value}".replace('"', "'")
    return variable


if __name__ == "__main__":
    sys.stdout.write(mermaid())
