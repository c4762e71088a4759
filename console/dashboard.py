"""Dashboard tiles. Each app registers a function that returns a tile for a user, or ``None``
when the user may not see it; the dashboard renders them in order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest


@dataclass
class Tile:
    title: str
    template: str
    order: int = 100
    context: dict[str, Any] = field(default_factory=dict)
    link: str | None = None
    attention: bool = False


TileProvider = Callable[[HttpRequest], Tile | None]
_providers: list[TileProvider] = []


def register(provider: TileProvider) -> TileProvider:
    if provider not in _providers:
        _providers.append(provider)
    return provider


def tiles_for(request: HttpRequest) -> list[Tile]:
    tiles = [tile for provider in _providers if (tile := provider(request)) is not None]
    return sorted(tiles, key=lambda tile: (not tile.attention, tile.order))
