"""`make bench`: the whole scenario suite on a seeded PostgreSQL database, report included.

    .venv/bin/python -m bench.run_all [--profile M] [--rounds 200] [--only inbox ...]

The database is PORTAL_BENCH_DATABASE_URL when set, else `wk_bench_<profile>` on the local
PostgreSQL server (tests/support/postgres.py: PORTAL_TEST_POSTGRES_URL, 127.0.0.1:5432, or a
throwaway server started from the installed binaries). A database that already holds the
profile (its facts file bench/out/seed-<profile>.json exists and it has cases) is reused and
only migrated to the current schema; otherwise it is created, migrated and seeded (profile M:
a few minutes). Scenarios needing Redis find or start one themselves. The report goes to
bench/out/report.md and report.json.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import psycopg

from bench.seed import conninfo
from bench.suite import OUT_DIR


def _portal(database_url: str, *args: str) -> None:
    env = {**os.environ, "PORTAL_DATABASE_URL": database_url, "PORTAL_ENV": "development"}
    subprocess.run([sys.executable, "-m", "portal", *args], env=env, check=True)


def _seeded(database_url: str, profile: str) -> bool:
    if not (OUT_DIR / f"seed-{profile}.json").exists():
        return False
    try:
        with psycopg.connect(conninfo(database_url)) as conn:
            row = conn.execute("SELECT count(*) FROM (SELECT 1 FROM cases LIMIT 1) AS c").fetchone()
            return bool(row and row[0])
    except psycopg.Error:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", default="M", choices=["XS", "S", "M"])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--only", action="append", default=[])
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args(argv)

    server = None
    database_url = os.environ.get("PORTAL_BENCH_DATABASE_URL", "").strip()
    if not database_url:
        from tests.support.postgres import obtain_postgres, why_unavailable

        server = obtain_postgres()
        if server is None:
            print("No PostgreSQL server: " + "; ".join(why_unavailable), file=sys.stderr)
            return 2
        name = f"wk_bench_{args.profile.lower()}"
        if server.database_exists(name) and not _seeded(server.url_for(name), args.profile):
            server.drop_database(name)  # ours, and of unknown content (no facts file)
        if not server.database_exists(name):
            server.create_database(name)
        database_url = server.url_for(name)
    try:
        if _seeded(database_url, args.profile):
            print(f"Reusing the seeded database ({args.profile}).", file=sys.stderr)
            _portal(database_url, "db", "upgrade")
        else:
            _portal(database_url, "db", "upgrade")
            _portal(database_url, "bench", "seed", "--profile", args.profile)
        run = ["bench", "run", "--profile", args.profile, "--rounds", str(args.rounds)]
        run += ["--out", str(args.out)]
        for group in args.only:
            run += ["--only", group]
        _portal(database_url, *run)
    finally:
        if server is not None and server.workdir is not None:
            server.stop()  # a throwaway cluster goes with its data
    return 0


if __name__ == "__main__":
    sys.exit(main())
