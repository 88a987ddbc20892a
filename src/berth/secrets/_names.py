"""Name rules: SSM parameter names and labels, Secrets Manager secret names (as AWS checks them)."""

from __future__ import annotations

import re

from berth.secrets._errors import HierarchyLevelLimitExceeded, InvalidParameter, SsmValidation

MAX_DEPTH = 15
MAX_ARN_LENGTH = 1011  # AWS counts the parameter's whole ARN against this
_PARAMETER_CHARS = re.compile(r"[A-Za-z0-9_.\-/]+")
_LABEL = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
_SECRET_NAME = re.compile(r"[A-Za-z0-9/_+=.@\-]{1,512}")

PATH_RULES = ("Parameter name: can't be prefixed with \"ssm\" (case-insensitive). If formed as a path, it can "
              "consist of sub-paths divided by slash symbol; each sub-path can be formed as a mix of letters, "
              "numbers and the following 3 symbols .-_")
PREFIX_RULES = "Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive)."
DEPTH_RULES = ("A hierarchy can have a maximum of 15 levels. For more information, see Requirements and "
               "constraints for parameter names in the AWS Systems Manager User Guide.")
SECRET_NAME_RULES = ("Invalid name. Must be a valid name containing alphanumeric characters, or any of the "
                     "following: -/_+=.@!")


def parameter_arn(name: str, *, account: str, region: str) -> str:
    """`arn:aws:ssm:<region>:<account>:parameter/<name without its leading slash>`."""
    return f"arn:aws:ssm:{region}:{account}:parameter/{name.lstrip('/')}"


def check_parameter_name(name: str, *, account: str, region: str) -> str:
    """The name when PutParameter may create it.

    Raises:
        SsmValidation: reserved prefix, characters outside a-zA-Z0-9_.-/, a relative or malformed
            path, or too long. AccessDenied for names under /aws/.
        HierarchyLevelLimitExceeded: more than 15 levels.
    """
    from berth.secrets._errors import AccessDenied

    if not name:
        raise SsmValidation("1 validation error detected: Value '' at 'name' failed to satisfy constraint: "
                            "Member must have length greater than or equal to 1")
    bare = name.lower().lstrip("/")
    is_path = name.count("/") > 1 or (name.startswith("/") and "/" in name[1:])
    if bare.startswith(("aws", "ssm")):
        if name.lower().startswith("/aws/"):
            raise AccessDenied(f"No access to reserved parameter name: {name}.")
        raise SsmValidation(PATH_RULES if is_path else PREFIX_RULES)
    if not _PARAMETER_CHARS.fullmatch(name):
        raise SsmValidation(PATH_RULES)
    if "/" in name:
        if not name.startswith("/"):
            raise SsmValidation("Parameter name must be a fully qualified name.")
        segments = name[1:].split("/")
        if any(not s for s in segments):
            raise SsmValidation(PATH_RULES)
        if len(segments) > MAX_DEPTH:
            raise HierarchyLevelLimitExceeded(DEPTH_RULES)
    if len(parameter_arn(name, account=account, region=region)) > MAX_ARN_LENGTH:
        raise SsmValidation(f"Parameter name: the full ARN of a parameter can be at most {MAX_ARN_LENGTH} "
                            "characters long.")
    return name


def check_path(path: str) -> str:
    """A GetParametersByPath path: "/" or "/a/b" (a trailing slash is allowed).

    Raises:
        SsmValidation: anything else.
    """
    if path.lower().lstrip("/").startswith(("aws/", "ssm/")) or path.lower().strip("/") in ("aws", "ssm"):
        raise SsmValidation("Filters for common parameters can't be prefixed with \"aws\" or \"ssm\" "
                            "(case-insensitive). When using global parameters, please specify within a global "
                            "namespace.")
    inner = path[1:].rstrip("/")
    if not path.startswith("/") or "//" in path or (inner and not _PARAMETER_CHARS.fullmatch(inner)):
        raise SsmValidation("The parameter doesn't meet the parameter name requirements. The parameter name must "
                            "begin with a forward slash \"/\". It can't be prefixed with \"aws\" or \"ssm\" "
                            "(case-insensitive). It must use only letters, numbers, or the following symbols: . "
                            "(period), - (hyphen), _ (underscore). Special characters are not allowed. All "
                            "sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: "
                            "/get/parameters2-/by1./path0_.")
    if inner and len(inner.split("/")) > MAX_DEPTH:
        raise HierarchyLevelLimitExceeded(DEPTH_RULES)
    return path


def valid_label(label: str) -> bool:
    """Labels: 1-100 of a-zA-Z0-9_.-, not starting with a digit, "aws" or "ssm" (case-insensitive)."""
    return (bool(_LABEL.fullmatch(label)) and not label[0].isdigit()
            and not label.lower().startswith(("aws", "ssm")))


def check_secret_name(name: str) -> str:
    """Raises: InvalidParameter (Secrets Manager's wording) for a name AWS refuses."""
    if not _SECRET_NAME.fullmatch(name):
        raise InvalidParameter(SECRET_NAME_RULES)
    return name
