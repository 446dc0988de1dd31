"""Create the stack's resources in moto from the definitions that deploy.

Reads infra/resources.json and the ASL file (through infra.template) and
creates each table, queue, bucket and the state machine with boto3, naming
them from settings. Idempotent: an existing resource is left as it is.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.exceptions import ClientError

from chalicelib.settings import Settings
from infra.template import lambda_name_for, load_asl, load_resources

ACCOUNT_ID = "123456789012"

#: logical id in resources.json → the settings field holding its local name
TABLE_SETTINGS = {
    "SkillsTable": "skills_table",
    "ImportsTable": "imports_table",
    "RulesTable": "rules_table",
    "PrincipalsTable": "principals_table",
    "ImagesTable": "images_table",
    "AuditTable": "audit_table",
    "ResolverTable": "resolver_table",
}
BUCKET_SETTINGS = {"InboxBucket": "inbox_bucket", "ArtifactsBucket": "artifacts_bucket"}


@dataclass
class ProvisionedStack:
    queue_urls: dict[str, str]  # logical id → URL
    state_machine_arn: str
    function_names: dict[str, str]  # logical id → deployed function name

    def environment(self) -> dict[str, str]:
        """Settings the rest of the process needs to find these resources."""
        return {
            "SKILLHARBOR_INBOX_QUEUE_URL": self.queue_urls["InboxQueue"],
            "SKILLHARBOR_RUNNER_QUEUE_URL": self.queue_urls["RunnerQueue"],
            "SKILLHARBOR_STATE_MACHINE_ARN": self.state_machine_arn,
        }


def _clients(settings: Settings) -> dict[str, Any]:
    kwargs = {"region_name": settings.region, "endpoint_url": settings.aws_endpoint_url}
    return {name: boto3.client(name, **kwargs) for name in ("dynamodb", "s3", "sqs", "stepfunctions")}


def _resources_of(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def provision(settings: Settings, *, function_prefix: str) -> ProvisionedStack:
    template = load_resources()
    clients = _clients(settings)
    create_tables(clients["dynamodb"], settings, template=template)
    queue_urls = _create_queues(clients["sqs"], template)
    _create_buckets(clients["s3"], clients["sqs"], template, settings, queue_urls)
    arn, functions = _create_state_machine(clients["stepfunctions"], template, settings, function_prefix, queue_urls)
    return ProvisionedStack(queue_urls=queue_urls, state_machine_arn=arn, function_names=functions)


def create_tables(
    dynamodb: Any, settings: Settings, *, only: Iterable[str] | None = None, template: dict[str, Any] | None = None
) -> None:
    """The tables of resources.json, named as ``settings`` says (``only``: just these settings fields)."""
    wanted = set(only) if only is not None else set(TABLE_SETTINGS.values())
    for logical_id, resource in _resources_of(template or load_resources(), "AWS::DynamoDB::Table").items():
        if TABLE_SETTINGS[logical_id] not in wanted:
            continue
        props = resource["Properties"]
        kwargs = {
            "TableName": getattr(settings, TABLE_SETTINGS[logical_id]),
            "AttributeDefinitions": props["AttributeDefinitions"],
            "KeySchema": props["KeySchema"],
            "BillingMode": props["BillingMode"],
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        try:
            dynamodb.create_table(**kwargs)
        except ClientError as error:
            if error.response["Error"]["Code"] != "ResourceInUseException":
                raise
            continue
        if props.get("TimeToLiveSpecification"):
            dynamodb.update_time_to_live(TableName=kwargs["TableName"], TimeToLiveSpecification=props["TimeToLiveSpecification"])


def _create_queues(sqs: Any, template: dict[str, Any]) -> dict[str, str]:
    queues = _resources_of(template, "AWS::SQS::Queue")
    urls: dict[str, str] = {}
    # dead-letter queues first: the others point at them
    for logical_id in sorted(queues, key=lambda lid: "RedrivePolicy" in queues[lid]["Properties"]):
        props = queues[logical_id]["Properties"]
        attributes = {k: str(props[k]) for k in ("VisibilityTimeout", "MessageRetentionPeriod") if k in props}
        if "RedrivePolicy" in props:
            target = props["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
            target_arn = sqs.get_queue_attributes(QueueUrl=urls[target], AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps(
                {"deadLetterTargetArn": target_arn, "maxReceiveCount": str(props["RedrivePolicy"]["maxReceiveCount"])}
            )
        urls[logical_id] = sqs.create_queue(QueueName=props["QueueName"], Attributes=attributes)["QueueUrl"]
    return urls


def _create_buckets(s3: Any, sqs: Any, template: dict[str, Any], settings: Settings, queue_urls: dict[str, str]) -> None:
    for logical_id, resource in _resources_of(template, "AWS::S3::Bucket").items():
        props = resource["Properties"]
        bucket = getattr(settings, BUCKET_SETTINGS[logical_id])
        try:
            s3.create_bucket(Bucket=bucket)
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise
        if props.get("VersioningConfiguration"):
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        notifications = props.get("NotificationConfiguration", {}).get("QueueConfigurations", [])
        if notifications:
            configs = []
            for entry in notifications:
                queue_logical = entry["Queue"]["Fn::GetAtt"][0]
                queue_arn = sqs.get_queue_attributes(QueueUrl=queue_urls[queue_logical], AttributeNames=["QueueArn"])[
                    "Attributes"
                ]["QueueArn"]
                # CloudFormation spells the filter S3Key/Rules; the S3 API spells it Key/FilterRules
                rules = entry["Filter"]["S3Key"]["Rules"]
                configs.append({"QueueArn": queue_arn, "Events": [entry["Event"]], "Filter": {"Key": {"FilterRules": rules}}})
            s3.put_bucket_notification_configuration(
                Bucket=bucket, NotificationConfiguration={"QueueConfigurations": configs}
            )


def _create_state_machine(
    sfn: Any, template: dict[str, Any], settings: Settings, function_prefix: str, queue_urls: dict[str, str]
) -> tuple[str, dict[str, str]]:
    props = template["Resources"]["ImportStateMachine"]["Properties"]
    definition = json.dumps(load_asl())
    functions: dict[str, str] = {}
    for placeholder, value in props["DefinitionSubstitutions"].items():
        if "Ref" in value:  # a queue URL
            definition = definition.replace("${" + placeholder + "}", queue_urls[value["Ref"]])
            continue
        logical_id = value["Fn::GetAtt"][0]
        name = function_prefix + lambda_name_for(logical_id)
        functions[logical_id] = name
        arn = f"arn:aws:lambda:{settings.region}:{ACCOUNT_ID}:function:{name}"
        definition = definition.replace("${" + placeholder + "}", arn)
    name = "skillharbor-import"
    role = f"arn:aws:iam::{ACCOUNT_ID}:role/skillharbor-state-machine"
    existing = [m for m in sfn.list_state_machines()["stateMachines"] if m["name"] == name]
    if existing:
        arn = existing[0]["stateMachineArn"]
        sfn.update_state_machine(stateMachineArn=arn, definition=definition)
        return arn, functions
    return sfn.create_state_machine(name=name, definition=definition, roleArn=role)["stateMachineArn"], functions
