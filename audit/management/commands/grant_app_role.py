"""``manage.py grant_app_role ROLE``: give the role the console runs as what it needs, and on the
audit table only ``SELECT`` and ``INSERT`` (PostgreSQL).

Run it as the role that owns the tables (the one ``migrate`` runs as), after every ``migrate``.
The console then connects as ROLE, which may read and write every table but may not ``UPDATE``,
``DELETE`` or ``TRUNCATE`` audit events, nor ``ALTER TABLE ... DISABLE TRIGGER`` (only the owner
may alter a table): the application cannot erase its own history, whatever a bug or an attacker
makes it run. The append-only trigger stays as a second line.
"""

import os
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from psycopg import sql

from audit.models import AuditEvent

ROLE_NAME = r"[a-z_][a-z0-9_]{0,62}"


def grant_statements(role: str) -> list[sql.Composed]:
    audit_table = sql.Identifier(AuditEvent._meta.db_table)
    who = sql.Identifier(role)
    return [
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who),
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {}").format(
            who
        ),
        sql.SQL("GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO {}").format(who),
        sql.SQL("REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON {} FROM {}").format(
            audit_table, who
        ),
        # Tables a later migration creates: the owner's default privileges follow.
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public "
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {}"
        ).format(who),
        sql.SQL(
            "ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {}"
        ).format(who),
    ]


class Command(BaseCommand):
    help = "Grant the console's runtime role its privileges; audit events: SELECT and INSERT only."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("role", help="the PostgreSQL role the console connects as")
        parser.add_argument(
            "--password-env",
            metavar="VARIABLE",
            help="create the role (LOGIN) with the password in this environment variable when it "
            "does not exist yet (docker-compose.yml does)",
        )

    def handle(self, *args: Any, role: str, password_env: str | None, **options: Any) -> None:
        if connection.vendor != "postgresql":
            raise CommandError("grant_app_role is for PostgreSQL (SQLite has no roles)")
        if not re.fullmatch(ROLE_NAME, role):
            raise CommandError(f"{role!r} is not a plain role name (lower case, digits, _)")
        password = os.environ.get(password_env, "") if password_env else ""
        if password_env and len(password) < 12:
            raise CommandError(f"{password_env} must hold a password of 12 characters or more")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
            if cursor.fetchone() is None:
                if not password_env:
                    raise CommandError(
                        f"role {role} does not exist: CREATE ROLE {role} LOGIN first, "
                        "or pass --password-env"
                    )
                cursor.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(password)
                    )
                )
            for statement in grant_statements(role):
                cursor.execute(statement)
        self.stdout.write(
            f"granted {role}: every table; {AuditEvent._meta.db_table}: SELECT, INSERT"
        )
