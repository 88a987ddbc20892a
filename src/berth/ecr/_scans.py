"""Image scans, as far as berth can honestly run them (pure helpers; EcrService stores the results).

berth has no vulnerability database. A scan therefore ends at once with status FAILED and a
description that says why; berth never reports a scan as COMPLETE with no findings, which would
read as "this image is clean". The `image-scan-complete` waiter of the SDKs stops on FAILED.

AWS allows one basic scan per image per 24 hours (LimitExceededException), and berth keeps that
rule. Images in a repository that scans on push (its own scanOnPush, or a registry scanning rule)
report the same failure from their push time without a StartImageScan.
"""

from __future__ import annotations

from berth.ecr._model import ImageScan

FAILED = "FAILED"
SCAN_INTERVAL = 24 * 3600.0
NO_DATABASE = ("berth has no vulnerability database, so this image was not scanned for vulnerabilities "
               "(no findings are available; this is not a clean result)")


def failed_scan(digest: str, at: float) -> ImageScan:
    return ImageScan(digest, FAILED, NO_DATABASE, at)


def image_id_text(digest: str | None, tag: str | None) -> str:
    """An image id as ECR's error messages print it: {imageDigest:'sha256:…', imageTag:'null'}."""
    return f"{{imageDigest:'{digest or 'null'}', imageTag:'{tag or 'null'}'}}"
