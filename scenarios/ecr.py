"""ECR: repositories, images and image indexes, pushed the way a registry client would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.docker.container.image.v1+json"
OPT_IN = {"Key": "ecr-cleanup", "Value": "enabled"}  # the console's default opt-in tag
ARCHITECTURES = ["amd64", "arm64", "s390x"]


def image_uri(account_id: str, region: str, repository: str, ref: str = "") -> str:
    """``<account>.dkr.ecr.<region>.amazonaws.com/<repository><ref>``; ``ref`` is ``:tag``,
    ``@sha256:...`` or empty."""
    return f"{account_id}.dkr.ecr.{region}.amazonaws.com/{repository}{ref}"


def create_repository(
    ecr: Any,
    name: str,
    *,
    opted_in: bool = True,
    mutability: str = "MUTABLE",
    exist_ok: bool = False,
) -> str:
    """Create a repository, tagged for the cleanup when ``opted_in``; returns its ARN."""
    try:
        answer = ecr.create_repository(
            repositoryName=name, imageTagMutability=mutability, tags=[OPT_IN] if opted_in else []
        )
    except ecr.exceptions.RepositoryAlreadyExistsException:
        if not exist_ok:
            raise
        answer = {
            "repository": ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
        }
    arn: str = answer["repository"]["repositoryArn"]
    return arn


def image_manifest(seed: str, size: int = 1000) -> dict[str, Any]:
    """A single-platform image manifest. Its config digest comes from ``seed``: two seeds, two
    images. ``size`` is the config's size, which moto reports as the image's size."""
    return {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {
            "mediaType": CONFIG,
            "size": size,
            "digest": "sha256:" + hashlib.sha256(seed.encode()).hexdigest(),
        },
        "layers": [],
    }


def index_manifest(children: Sequence[str]) -> dict[str, Any]:
    """A multi-platform image index over the child manifests' digests (amd64, arm64, s390x)."""
    return {
        "schemaVersion": 2,
        "mediaType": INDEX,
        "manifests": [
            {
                "mediaType": MANIFEST,
                "digest": child,
                "size": 500,
                "platform": {"architecture": architecture, "os": "linux"},
            }
            for child, architecture in zip(children, ARCHITECTURES, strict=False)
        ],
    }


def digest_of(body: str) -> str:
    return "sha256:" + hashlib.sha256(body.encode()).hexdigest()


def push_image(
    ecr: Any,
    repository: str,
    tag: str | None = None,
    *,
    manifest: dict[str, Any],
    exist_ok: bool = False,
) -> str:
    """PutImage of ``manifest`` (untagged without ``tag``); returns the image's digest.

    The digest is the manifest's sha256, passed as ``imageDigest``: moto (5.2) does not compute
    it from the manifest, and without it different images would collide. ``exist_ok`` accepts
    pushing the same image and tag again (a seed run twice)."""
    body = json.dumps(manifest, sort_keys=True)
    digest = digest_of(body)
    params = {
        "repositoryName": repository,
        "imageManifest": body,
        "imageDigest": digest,
        "imageManifestMediaType": manifest.get("mediaType", MANIFEST),
    }
    if tag:
        params["imageTag"] = tag
    try:
        ecr.put_image(**params)
    except ecr.exceptions.ImageAlreadyExistsException:
        if not exist_ok:
            raise
    return digest


def push_index(
    ecr: Any, repository: str, tag: str, children: Sequence[str], *, exist_ok: bool = False
) -> str:
    """Push an image index over ``children`` (pushed before, untagged); returns its digest. moto
    stores the index as given and neither links nor protects the children."""
    return push_image(ecr, repository, tag, manifest=index_manifest(children), exist_ok=exist_ok)


def retag(ecr: Any, repository: str, digest: str, tag: str) -> None:
    """Put ``tag`` on the image ``digest`` (moving it from wherever it was)."""
    image = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageDigest": digest}])[
        "images"
    ][0]
    ecr.put_image(
        repositoryName=repository,
        imageManifest=image["imageManifest"],
        imageTag=tag,
        imageDigest=digest,
    )


def image_digests(ecr: Any, repository: str) -> set[str]:
    """The digests in ``repository`` now."""
    images = ecr.describe_images(repositoryName=repository)["imageDetails"]
    return {image["imageDigest"] for image in images}
