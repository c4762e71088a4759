"""Every change the tests and benches make to moto's behaviour, in one place.

Each patch says what it works around and which moto version needs it (all were written for moto
5.2.5, the version installed; check them again when moto is upgraded). They patch moto's
backend classes, so they act wherever the backends run in this process: ``mock_aws`` in a test,
or moto's server started in a thread of this process (``scenarios.moto_server``); never a moto
server in another process. Every patch is a context manager and puts moto back as it was on exit.

Nothing else in ``tests/`` or ``bench/`` may reach into ``moto.*.models``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ReadTimeoutError
from moto.awslambda.models import LambdaBackend
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ecr.models import ecr_backends
from moto.ecr.responses import ECRResponse
from moto.ecs.models import EC2ContainerServiceBackend
from moto.sqs import models as sqs_models


@contextmanager
def _replaced(owner: Any, name: str, value: Any) -> Iterator[None]:
    original = getattr(owner, name)
    setattr(owner, name, value)
    try:
        yield
    finally:
        setattr(owner, name, original)


# --- Lambda invocations --------------------------------------------------------------------------


@dataclass(frozen=True)
class LambdaAnswer:
    """What an invocation answers: a payload, a ``FunctionError``, or no answer in time."""

    payload: bytes = b"null"
    function_error: str | None = None
    timeout: bool = False


@contextmanager
def scripted_lambda(answer: Callable[[Any], LambdaAnswer]) -> Iterator[None]:
    """Every ``Invoke`` answers what ``answer(event)`` says (``event``: the request's JSON).

    Works around moto 5.2.5's Docker-less Lambda (``LambdaSimpleBackend.invoke``, used with
    ``{"lambda": {"use_docker": False}}``): it echoes the request or a queued payload
    (``/moto-api/static/lambda-simple/response``), never sets ``X-Amz-Function-Error`` and never
    times out, so a failing or hanging function cannot be played otherwise. A timeout is raised
    as botocore's ``ReadTimeoutError``, as the client would raise it."""

    def invoke(
        self: LambdaSimpleBackend,
        function_name: str,
        qualifier: str | None,
        body: Any,
        headers: Any,
        response_headers: dict[str, str],
    ) -> bytes:
        result = answer(json.loads(body) if body else None)
        if result.timeout:
            raise ReadTimeoutError(endpoint_url=f"https://lambda.{self.region_name}.amazonaws.com")
        if result.function_error:
            response_headers["x-amz-function-error"] = result.function_error
        return result.payload

    with _replaced(LambdaSimpleBackend, "invoke", invoke):
        yield


@contextmanager
def slow_lambda(seconds: float) -> Iterator[None]:
    """Every ``Invoke`` takes ``seconds`` before moto answers it as usual.

    Works around moto 5.2.5 answering ``Invoke`` at once (``LambdaSimpleBackend.invoke``): two
    invocations that ran at the same time cannot be told from two in a row unless each lasts."""
    invoke = LambdaSimpleBackend.invoke

    def slow_invoke(self: LambdaSimpleBackend, *args: Any, **kwargs: Any) -> Any:
        time.sleep(seconds)
        return invoke(self, *args, **kwargs)

    with _replaced(LambdaSimpleBackend, "invoke", slow_invoke):
        yield


# --- Event source mappings -----------------------------------------------------------------------


@dataclass(frozen=True)
class MappingUpdate:
    uuid: str
    enabled: bool | None  # the Enabled asked for; None when the call did not set it
    at: float  # time.time() when moto received the call


@contextmanager
def mapping_updates(
    *, delay: float = 0.0, on_update: Callable[[MappingUpdate], None] | None = None
) -> Iterator[list[MappingUpdate]]:
    """Notes every ``UpdateEventSourceMapping`` when moto receives it (yields the list, and calls
    ``on_update`` with each), then waits ``delay`` seconds before moto applies it.

    Works around moto 5.2.5 applying the change at once and keeping no trace of when it was
    asked (``LambdaBackend.update_event_source_mapping``, which the Docker-less
    ``LambdaSimpleBackend`` inherits): a bench measuring the moment the console disables a
    mapping, or a test that needs the AWS call to be slow, has no other hook."""
    original = LambdaBackend.update_event_source_mapping
    seen: list[MappingUpdate] = []

    def update_event_source_mapping(self: LambdaBackend, uuid: str, spec: dict[str, Any]) -> Any:
        update = MappingUpdate(uuid, spec.get("Enabled"), time.time())
        seen.append(update)
        if on_update is not None:
            on_update(update)
        if delay:
            time.sleep(delay)
        return original(self, uuid, spec)

    with _replaced(LambdaBackend, "update_event_source_mapping", update_event_source_mapping):
        yield seen


# --- SQS -----------------------------------------------------------------------------------------


@contextmanager
def sqs_clock() -> Iterator[Callable[[float], None]]:
    """Yields ``advance(seconds)``, which moves moto's SQS clock forward instead of sleeping.

    Works around moto 5.2.5 running visibility timeouts and delays on the wall clock
    (``moto.sqs.models.unix_time_millis``): a message received during a test would otherwise
    stay invisible for the real timeout."""
    real = sqs_models.unix_time_millis
    offset = {"seconds": 0.0}

    def unix_time_millis(*args: Any) -> float:
        return real(*args) + offset["seconds"] * 1000

    def advance(seconds: float) -> None:
        offset["seconds"] += seconds

    with _replaced(sqs_models, "unix_time_millis", unix_time_millis):
        yield advance


# --- ECS -----------------------------------------------------------------------------------------


@contextmanager
def slow_task_definition_reads(seconds: float) -> Iterator[Counter[str]]:
    """Every ``DescribeTaskDefinition`` takes ``seconds`` before moto answers it; yields how
    many times each task definition was asked for.

    Works around moto 5.2.5 answering at once
    (``EC2ContainerServiceBackend.describe_task_definition``): a burst of events whose handlers
    each ask ECS must keep the workers busy for a while, as it does against AWS, and only moto
    sees every ask."""
    describe = EC2ContainerServiceBackend.describe_task_definition
    described: Counter[str] = Counter()

    def slow_describe(self: EC2ContainerServiceBackend, task_definition: str) -> Any:
        described[task_definition] += 1
        time.sleep(seconds)
        return describe(self, task_definition)

    with _replaced(EC2ContainerServiceBackend, "describe_task_definition", slow_describe):
        yield described


# --- ECR -----------------------------------------------------------------------------------------


def set_image_pushed_at(
    account_id: str, region: str, repository: str, digest: str, pushed_at: datetime
) -> None:
    """Set an image's push time (``imagePushedAt``) in moto's ECR.

    Works around moto 5.2.5 stamping ``PutImage`` with the wall clock in whole seconds
    (``moto.ecr.models.Image.image_pushed_at``), which no API call can change: images pushed
    in one test tie, and "the newest N" or an image's age cannot be set up otherwise. Not a
    context manager: the backend it writes to is the test's own and goes with it."""
    for image in ecr_backends[account_id][region].repositories[repository].images:
        if image.get_image_digest() == digest:
            image.image_pushed_at = int(pushed_at.timestamp())


@dataclass
class EcrArchive:
    """The archival storage class as ``ecr_archive()`` plays it.

    ``now``: the time stamped as ``lastArchivedAt`` / ``lastActivatedAt`` (a test sets its
    injected clock; None: the wall clock). ``calls``: every ``UpdateImageStorageClass`` as (repository, digest,
    target). ``refuse``: digest -> error code the next call for it answers. A restore leaves
    the image ``ACTIVATING`` until ``complete_restores()``, or at once with ``instant_restore``,
    or (a server for people, ``sandbox.moto_server``) once ``restore_after`` seconds passed."""

    now: datetime | None = None  # None: the wall clock at each call
    calls: list[tuple[str, str, str]] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    instant_restore: bool = False
    restore_after: float | None = None
    _activating: list[tuple[Any, float]] = field(default_factory=list)

    def complete_restores(self, *, asked_before: float | None = None) -> int:
        """Every image being restored (asked before ``asked_before``, a ``time.time()``) is
        ``ACTIVE`` now; returns how many."""
        done = [(i, at) for i, at in self._activating if asked_before is None or at < asked_before]
        for image, _ in done:
            image.image_status = "ACTIVE"
        self._activating = [item for item in self._activating if item not in done]
        return len(done)


@contextmanager
def ecr_archive(archive: EcrArchive | None = None) -> Iterator[EcrArchive]:
    """ECR's archival storage class in moto: ``UpdateImageStorageClass`` and ``DescribeImages``
    reporting ``imageStatus``, ``lastArchivedAt``, ``lastActivatedAt`` and honouring
    ``filter.imageStatus`` (only ``ACTIVE`` images unless asked, as ECR does).

    Works around moto 5.2.5 not implementing ``UpdateImageStorageClass`` (NotImplementedError)
    and ignoring ``filter`` in ``ECRResponse.describe_images``; a test that archives or
    restores has no other way through moto (botocore's ``Stubber`` would replace every other
    ECR call of the same client too)."""
    archive = archive or EcrArchive()
    describe = ECRResponse.describe_images

    def update_image_storage_class(self: ECRResponse) -> ActionResult:
        name = self._get_param("repositoryName")
        image_id = self._get_param("imageId") or {}
        target = self._get_param("targetStorageClass")
        repository = self.ecr_backend._get_repository(name, self._get_param("registryId"))
        image = repository._get_image(image_id.get("imageTag"), image_id.get("imageDigest"))
        digest = image.get_image_digest()
        archive.calls.append((name, digest, target))
        code = archive.refuse.pop(digest, None)
        if code:
            raise JsonRESTError(code, f"{code} (refused by the test)")
        if target == "ARCHIVE":
            image.image_status = "ARCHIVED"
            image.last_archived_at = archive.now or datetime.now(UTC)
        elif getattr(image, "image_status", "ACTIVE") != "ACTIVE":
            image.last_activated_at = archive.now or datetime.now(UTC)
            image.image_status = "ACTIVE" if archive.instant_restore else "ACTIVATING"
            if not archive.instant_restore:
                archive._activating.append((image, time.time()))
        return ActionResult(
            {
                "registryId": image.registry_id,
                "repositoryName": name,
                "imageId": {"imageDigest": digest},
                "imageStatus": getattr(image, "image_status", "ACTIVE"),
            }
        )

    def describe_images(self: ECRResponse) -> ActionResult:
        if archive.restore_after is not None:
            archive.complete_restores(asked_before=time.time() - archive.restore_after)
        wanted = (self._get_param("filter") or {}).get("imageStatus", "ACTIVE")
        result = describe(self)
        if wanted != "ANY" and not self._get_param("imageIds"):
            answer: dict[str, Any] = result.result  # type: ignore[assignment]
            answer["imageDetails"] = [
                image
                for image in answer["imageDetails"]
                if getattr(image, "image_status", "ACTIVE") == wanted
            ]
        return result

    ECRResponse.update_image_storage_class = update_image_storage_class  # type: ignore[attr-defined]
    try:
        with _replaced(ECRResponse, "describe_images", describe_images):
            yield archive
    finally:
        del ECRResponse.update_image_storage_class  # type: ignore[attr-defined]
