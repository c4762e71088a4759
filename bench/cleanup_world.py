"""The scale benchmark's world, made when asked rather than stored.

At 10x the bench's inventory holds 500,000 images and 200,000 task definition revisions: stored as
objects in the fake (``scenarios/fake_aws.py``) they would take more memory than the console under
test. Here a repository's images and a region's revisions are rows computed from their index, so
the fake answers exactly what a stored world would (the same calls counted the same way) while
holding a few integers per revision and nothing per image. Import after ``django.setup()``.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta

from scenarios.fake_aws import FakeAws, FakeImage, FakeRepository


def digest(*parts) -> str:
    return "sha256:" + hashlib.sha256("/".join(map(str, parts)).encode()).hexdigest()


class GeneratedImages(Mapping[str, FakeImage]):
    """Image ``i`` of repository number ``r``: digest ``digest(r, i)``, tag ``v<i>`` unless ``i``
    is a multiple of 3, pushed one day apart (the newest last)."""

    def __init__(self, r: int, count: int, now: datetime) -> None:
        self.r, self.count, self.now = r, count, now

    def image(self, i: int) -> FakeImage:
        return FakeImage(
            digest(self.r, i),
            [f"v{i}"] if i % 3 else [],
            self.now - timedelta(days=self.count - i),
            size=50_000_000 + i,
        )

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[str]:
        return (digest(self.r, i) for i in range(self.count))

    def __getitem__(self, key: str) -> FakeImage:
        for i in range(self.count):  # not on the bench's path: only ground-truth helpers ask
            if digest(self.r, i) == key:
                return self.image(i)
        raise KeyError(key)

    def values(self) -> Iterator[FakeImage]:  # type: ignore[override]
        return (self.image(i) for i in range(self.count))

    def items(self) -> Iterator[tuple[str, FakeImage]]:  # type: ignore[override]
        return ((image.digest, image) for image in self.values())


class GeneratedTaskDefinitions(Mapping[str, tuple[str, list[str]]]):
    """The ACTIVE revisions of one account and region: revision ``t`` is ``family-<t % 400>``'s
    ``t // 400 + 1``-th (as ``FakeAws.register`` numbers them), with one container whose image
    is tag ``v<i>`` (or digest, for an untagged ``i``) of repository number ``r``."""

    FAMILIES = 400

    def __init__(self, account_id: str, region: str, repositories: list[FakeRepository]) -> None:
        self.prefix = f"arn:aws:ecs:{region}:{account_id}:task-definition/family-"
        self.repositories = repositories
        self.repository = array("i")
        self.image_index = array("i")

    def add(self, r: int, i: int) -> str:
        self.repository.append(r)
        self.image_index.append(i)
        return self.arn(len(self.repository) - 1)

    def arn(self, t: int) -> str:
        return f"{self.prefix}{t % self.FAMILIES}:{t // self.FAMILIES + 1}"

    def images(self, t: int) -> list[str]:
        r, i = self.repository[t], self.image_index[t]
        uri = self.repositories[r].uri
        return [f"{uri}:v{i}" if i % 3 else f"{uri}@{digest(r, i)}"]

    def __len__(self) -> int:
        return len(self.repository)

    def __iter__(self) -> Iterator[str]:
        return (self.arn(t) for t in range(len(self)))

    def __getitem__(self, arn: str) -> tuple[str, list[str]]:
        family, _, revision = arn.removeprefix(self.prefix).partition(":")
        if not (arn.startswith(self.prefix) and family.isdigit() and revision.isdigit()):
            raise KeyError(arn)
        t = (int(revision) - 1) * self.FAMILIES + int(family)
        if int(family) >= self.FAMILIES or not 0 <= t < len(self):
            raise KeyError(arn)
        return "ACTIVE", self.images(t)

    def values(self) -> Iterator[tuple[str, list[str]]]:  # type: ignore[override]
        return (("ACTIVE", self.images(t)) for t in range(len(self)))

    def items(self) -> Iterator[tuple[str, tuple[str, list[str]]]]:  # type: ignore[override]
        return ((self.arn(t), ("ACTIVE", self.images(t))) for t in range(len(self)))


class GeneratedAws(FakeAws):
    """``FakeAws`` over generated repositories and revisions, with repositories found by ARN in
    one step (the bench reads the opt-in tag of thousands of them)."""

    def __init__(self) -> None:
        super().__init__()
        self._by_arn: dict[str, FakeRepository] = {}

    def generated_repository(
        self, account_id: str, region: str, name: str, r: int, count: int, now: datetime
    ) -> FakeRepository:
        repo = self.repository(account_id, region, name)
        repo.images = GeneratedImages(r, count, now)  # type: ignore[assignment]
        self._by_arn[repo.arn] = repo
        return repo

    def generated_task_definitions(
        self, account_id: str, region: str, repositories: list[FakeRepository]
    ) -> GeneratedTaskDefinitions:
        revisions = GeneratedTaskDefinitions(account_id, region, repositories)
        self.region(account_id, region).task_definitions = revisions  # type: ignore[assignment]
        return revisions

    def _repo_by_arn(self, account, region, arn):
        repo = self._by_arn.get(arn)
        if repo is None or repo.account_id != account.account_id or repo.region != region:
            return None
        return repo
