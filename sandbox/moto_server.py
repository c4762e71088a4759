"""The sandbox AWS of ``make demo``: moto's server, with ECR's archival storage class played by
``scenarios.moto_patches.ecr_archive`` (moto 5.2.5 lacks ``UpdateImageStorageClass``). A restore
stays ACTIVATING for ``RESTORE_SECONDS`` (ECR takes up to 20 minutes), so a person watching the
repository page sees the row change by itself.

Run as ``python -m sandbox.moto_server -H 127.0.0.1 -p PORT`` (moto.server's arguments)."""

from __future__ import annotations

import sys

RESTORE_SECONDS = 20.0


def main(argv: list[str] | None = None) -> None:
    from moto.server import main as moto_main

    from scenarios import moto_patches

    played = moto_patches.EcrArchive(restore_after=RESTORE_SECONDS)
    with moto_patches.ecr_archive(played):
        moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
