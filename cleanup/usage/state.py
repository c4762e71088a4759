"""A repository as ECR describes it now, and which references point at one of its images."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from cleanup import aws
from cleanup.usage.references import Reference
from cleanup.usage.snapshot import Snapshot


@dataclass
class RepositoryState:
    """A repository as ECR describes it now: opt-in tag, images, tags, index children."""

    opted_in: bool
    exists: bool
    images: dict[str, aws.ImageInfo] = field(default_factory=dict)
    tag_to_digest: dict[str, str] = field(default_factory=dict)
    parents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    _newest: dict[int, set[str]] = field(default_factory=dict)
    _digest_tags: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def build(cls, opted_in: bool, images: list[aws.ImageInfo] | None) -> RepositoryState:
        state = cls(opted_in=opted_in, exists=images is not None)
        for image in images or []:
            state.images[image.digest] = image
            for tag in image.tags:
                state.tag_to_digest[tag] = image.digest
                state._digest_tags[image.digest].append(tag)
            for child in image.child_digests:
                state.parents[child].add(image.digest)
        return state

    def tags_of(self, digests: set[str]) -> set[str]:
        return {tag for digest in digests for tag in self._digest_tags.get(digest, ())}

    def newest(self, count: int) -> set[str]:
        """Digests of the newest ``count`` top-level images (index children follow their index)."""
        if count <= 0:
            return set()
        if count not in self._newest:
            top = [image for digest, image in self.images.items() if not self.parents.get(digest)]
            top.sort(key=lambda image: (image.pushed_at is not None, image.pushed_at), reverse=True)
            self._newest[count] = {image.digest for image in top[:count]}
        return self._newest[count]


def references_to_image(
    snapshot: Snapshot, key: tuple[str, str, str], state: RepositoryState, digest: str
) -> list[Reference]:
    """References to the digest, to any tag that points at it now, and for an image index to any
    of its children (an index is in use when it or any child is referenced)."""
    digests = {digest}
    image = state.images.get(digest)
    if image is not None:
        digests.update(image.child_digests)
    return snapshot.references_to(key, digests, state.tags_of(digests))
