"""Database expressions the Register Service reads its digest with."""

from __future__ import annotations

from typing import Any

from django.db.models import BigIntegerField, CharField, Func


class EpochMicros(Func):
    """A datetime column as exact microseconds since the Unix epoch, computed by the database.

    Reading 100,000 `updated_at` values as datetimes costs Django a conversion each (most of a
    digest's read); as integers they arrive ready. Exact on both backends (no floating point):
    SQLite keeps `YYYY-MM-DD HH:MM:SS[.ffffff]` text in UTC, PostgreSQL a timestamp.
    """

    arity = 1
    output_field = BigIntegerField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        return self.as_sql(
            compiler,
            connection,
            # Django writes the fraction as six digits, or none when it is zero (CAST('' AS INTEGER) is 0).
            # '%%%%s': the template makes it '%%s', which Django's SQLite cursor turns into strftime's '%s'
            # (a bare '%s' would be taken for a query parameter). The whole seconds are read without the
            # fraction: strftime rounds 9999-12-31 23:59:59.999999 past its range, to NULL.
            template="(CAST(strftime('%%%%s', substr(%(expressions)s, 1, 19)) AS INTEGER) * 1000000"
            " + CAST(substr(%(expressions)s, 21, 6) AS INTEGER))",
            **extra_context,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        return self.as_sql(
            compiler,
            connection,
            template="(CAST(EXTRACT(EPOCH FROM date_trunc('second', %(expressions)s)) AS BIGINT) * 1000000"
            " + MOD(CAST(EXTRACT(MICROSECONDS FROM %(expressions)s) AS BIGINT), 1000000))",
            **extra_context,
        )


class IsoUtc(Func):
    """A datetime column as ISO-8601 text in UTC with six fraction digits (`2026-11-25T15:01:27.000000+00:00`),
    exactly what `isoformat(timespec="microseconds")` writes of it, computed by the database."""

    arity = 1
    output_field = CharField()

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        return self.as_sql(
            compiler,
            connection,
            # Django keeps `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC: the fraction is written only when not zero.
            template="(replace(%(expressions)s, ' ', 'T')"
            " || CASE WHEN length(%(expressions)s) = 19 THEN '.000000' ELSE '' END || '+00:00')",
            **extra_context,
        )

    def as_postgresql(self, compiler: Any, connection: Any, **extra_context: Any) -> tuple[str, Any]:
        return self.as_sql(
            compiler,
            connection,
            template="to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"+00:00\"')",
            **extra_context,
        )
