"""Compose the deployable merge template from infra/resources.json and the ASL file.

``chalice package --merge-template build/merge-template.json out/`` merges it
into Chalice's SAM output; the local stack reads the same two files to create
its tables, buckets, queues and state machine (chalicelib/local/provision.py).

Run ``python -m infra.template OUT`` to write the merge template.
"""

from __future__ import annotations

import copy
import json
import re
import sys
from pathlib import Path
from typing import Any

INFRA = Path(__file__).resolve().parent
RESOURCES_FILE = INFRA / "resources.json"
ASL_FILE = INFRA / "state_machine.asl.json"
#: the runner fleet on AWS (ECS on EC2 container instances, ECR, scaling alarms); deploy-only: the local stack
#: starts its workers as processes (chalicelib/local/stack.py)
FLEET_FILE = INFRA / "runner_fleet.json"

#: environment of every function: the resources' real names, resolved by CloudFormation
FUNCTION_ENVIRONMENT: dict[str, Any] = {
    "SKILLHARBOR_SKILLS_TABLE": {"Ref": "SkillsTable"},
    "SKILLHARBOR_IMPORTS_TABLE": {"Ref": "ImportsTable"},
    "SKILLHARBOR_RULES_TABLE": {"Ref": "RulesTable"},
    "SKILLHARBOR_PRINCIPALS_TABLE": {"Ref": "PrincipalsTable"},
    "SKILLHARBOR_IMAGES_TABLE": {"Ref": "ImagesTable"},
    "SKILLHARBOR_AUDIT_TABLE": {"Ref": "AuditTable"},
    "SKILLHARBOR_RESOLVER_TABLE": {"Ref": "ResolverTable"},
    "SKILLHARBOR_INBOX_BUCKET": {"Ref": "InboxBucket"},
    "SKILLHARBOR_ARTIFACTS_BUCKET": {"Ref": "ArtifactsBucket"},
    "SKILLHARBOR_INBOX_QUEUE_URL": {"Ref": "InboxQueue"},
    "SKILLHARBOR_RUNNER_QUEUE_URL": {"Ref": "RunnerQueue"},
    # spelled out, not Ref'd: the state machine's role names the functions, so a Ref would be a cycle
    "SKILLHARBOR_STATE_MACHINE_ARN": {
        "Fn::Sub": "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:${AWS::StackName}-import"
    },
}


def load_resources() -> dict[str, Any]:
    return json.loads(RESOURCES_FILE.read_text())


def load_asl() -> dict[str, Any]:
    return json.loads(ASL_FILE.read_text())


def substitution_names(asl: dict[str, Any]) -> set[str]:
    """Every ``${Name}`` the definition expects to be substituted."""
    return set(re.findall(r"\$\{(\w+)\}", json.dumps(asl)))


def lambda_name_for(logical_id: str) -> str:
    """Chalice names a function's resource in CamelCase: ``RecordFailure`` ← ``record_failure``."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", logical_id).lower()


def merge_template() -> dict[str, Any]:
    template = load_resources()
    resources = template["Resources"]
    machine = resources["ImportStateMachine"]["Properties"]
    machine["Definition"] = load_asl()
    missing = substitution_names(machine["Definition"]) - set(machine["DefinitionSubstitutions"])
    if missing:
        raise ValueError(f"ASL expects substitutions the template lacks: {sorted(missing)}")
    fleet = json.loads(FLEET_FILE.read_text())
    for section in ("Parameters", "Conditions", "Resources", "Outputs"):
        clash = set(template.get(section, {})) & set(fleet.get(section, {}))
        if clash:
            raise ValueError(f"{FLEET_FILE.name} redefines {section} {sorted(clash)}")
        template.setdefault(section, {}).update(fleet.get(section, {}))
    template["Globals"] = {"Function": {"Environment": {"Variables": copy.deepcopy(FUNCTION_ENVIRONMENT)}}}
    return template


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path("build/merge-template.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(merge_template(), indent=2))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
