"""`berth aws-credentials`: the key pair the daemon made for its AWS endpoint.

It reads `<root>/aws/credentials` (0600, root's) directly, so only root gets an answer:

    $ export $(sudo berth aws-credentials)          # AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=...
    $ sudo berth aws-credentials --profile berth    # [berth] in ~/.aws/credentials and ~/.aws/config
    $ aws --profile berth ecr describe-repositories
"""

from __future__ import annotations

import argparse
import configparser
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

DEFAULT_ENDPOINT = "http://127.0.0.1:4566"
DEFAULT_REGION = "us-east-1"


def add_aws_credentials_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "aws-credentials", help="Print the AWS endpoint's key pair (or write an AWS CLI profile)",
        description="Print the key pair the daemon generated for its AWS endpoint (ECR, ECS) as "
                    "shell assignments, or write it as an AWS CLI profile with the endpoint URL. "
                    "The key file is root's: run this as root.")
    p.add_argument("--root", default="/var/lib/berth", help="the daemon's state directory (default /var/lib/berth)")
    p.add_argument("--profile", default=None, metavar="NAME",
                   help="write the keys as this profile in ~/.aws/credentials and ~/.aws/config "
                        "(or $AWS_SHARED_CREDENTIALS_FILE / $AWS_CONFIG_FILE) instead of printing them")
    p.add_argument("--endpoint-url", default=DEFAULT_ENDPOINT, metavar="URL",
                   help=f"the profile's endpoint_url (default {DEFAULT_ENDPOINT})")
    p.add_argument("--region", default=DEFAULT_REGION, help=f"the profile's region (default {DEFAULT_REGION})")
    p.set_defaults(func=_run)


def read_key_file(path: Path) -> tuple[str, str]:
    """(access key id, secret) from the daemon's key file (written by berth.api.aws.KeyFile: comment
    lines, then `ACCESS_KEY_ID SECRET_ACCESS_KEY`). The CLI reads it itself rather than import the
    daemon's AWS layer (cli/ talks to the daemon's APIs, or to files under --root, only).

    Raises:
        OSError: unreadable; ValueError: not one key pair.
    """
    pairs = [line.split() for line in path.read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    if len(pairs) != 1 or len(pairs[0]) not in (2, 3):
        raise ValueError("expected one 'ACCESS_KEY_ID SECRET_ACCESS_KEY' line")
    return pairs[0][0], pairs[0][1]


def _run(args: argparse.Namespace) -> int:
    path = Path(args.root).resolve() / "aws" / "credentials"
    try:
        access_key, secret_key = read_key_file(path)
    except PermissionError:
        sys.stderr.write(f"cannot read {path}: permission denied (the AWS endpoint's key is root's; run as root)\n")
        return 1
    except FileNotFoundError:
        sys.stderr.write(f"no key file {path}: start the daemon (with its AWS endpoint on) once, "
                         "or pass the daemon's --root\n")
        return 1
    except (OSError, ValueError) as err:
        sys.stderr.write(f"cannot read {path}: {err}\n")
        return 1
    if args.profile is None:
        print(f"AWS_ACCESS_KEY_ID={access_key}")
        print(f"AWS_SECRET_ACCESS_KEY={secret_key}")
        return 0
    home = Path.home() / ".aws"
    credentials_file = Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or home / "credentials")
    config_file = Path(os.environ.get("AWS_CONFIG_FILE") or home / "config")
    _update_ini(credentials_file, args.profile, {"aws_access_key_id": access_key,
                                                 "aws_secret_access_key": secret_key})
    # The config file names non-default profiles "profile NAME"; the credentials file does not.
    section = args.profile if args.profile == "default" else f"profile {args.profile}"
    _update_ini(config_file, section, {"region": args.region, "endpoint_url": args.endpoint_url})
    print(f"wrote profile {args.profile} to {credentials_file} and {config_file}; "
          f"use: aws --profile {args.profile} ecr describe-repositories")
    return 0


def _update_ini(path: Path, section: str, values: dict[str, str]) -> None:
    """Set `values` in `section`, keeping every other section; written atomically, mode 0600."""
    ini = configparser.RawConfigParser()
    if path.exists():
        ini.read(path)
    if not ini.has_section(section):
        ini.add_section(section)
    for key, value in values.items():
        ini.set(section, key, value)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp files are 0600
    try:
        with os.fdopen(fd, "w") as f:
            ini.write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
