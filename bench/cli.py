"""`portal bench`: benchmark data for the configured database (PORTAL_DATABASE_URL).

`portal bench seed --profile S|M|XS` builds a whole partner network in an empty, migrated
PostgreSQL database (see bench/profiles.py), prints progress and a summary, and writes the
facts the benchmarks need (largest dealer, agent emails, sample caller numbers) as JSON to
stdout's last line and to `bench/out/seed-<profile>.json`.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

OUT_DIR = Path(__file__).resolve().parent / "out"


@click.group()
def bench() -> None:
    """Benchmark data (PostgreSQL only)."""


@bench.command("seed")
@click.option(
    "--profile",
    "profile_name",
    required=True,
    type=click.Choice(["XS", "S", "M"], case_sensitive=False),
    help="XS: 30 organisations, 2,000 cases (tests); S: 500 and 100,000 (CI smoke); "
    "M: 5,000 and 1,000,000 with 2,000,000 shares and 5,000,000 timeline entries.",
)
@click.option("--random-seed", type=int, default=None, help="Another deterministic network.")
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the facts (default bench/out/seed-<profile>.json).",
)
def seed_command(profile_name: str, random_seed: int | None, out: Path | None) -> None:
    """Build a benchmark network in the configured, EMPTY database (migrated with
    `portal db upgrade`; the command refuses a database holding any row). Every seeded
    account has the password `bench`."""
    from bench.profiles import DEFAULT_RANDOM_SEED, SeedError, progress_printer, seed_profile
    from portal.config import ConfigError, load_config

    try:
        config = load_config({"CHECK_MIGRATIONS": False})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if config["PORTAL_ENV"] == "production":
        # Thousands of accounts with one published password.
        raise click.ClickException("Benchmark data never goes into production (PORTAL_ENV).")
    profile = profile_name.upper()
    try:
        facts = seed_profile(
            str(config["DATABASE_URL"]),
            profile,
            random_seed=DEFAULT_RANDOM_SEED if random_seed is None else random_seed,
            argon2_profile=str(config.get("ARGON2_PROFILE", "default")),
            progress=progress_printer(lambda line: click.echo(line, err=True)),
        )
    except SeedError as exc:
        raise click.ClickException(str(exc)) from None
    target = out or OUT_DIR / f"seed-{profile}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    click.echo(f"Profile {profile} seeded in {facts['seconds']} s.")
    width = max(len(table) for table in facts["counts"])
    for table, count in facts["counts"].items():
        click.echo(f"  {table:<{width}} {count:>12,} rows {facts['sizes_mb'][table]:>10,.1f} MB")
    for name, seconds in facts["phases"].items():
        click.echo(f"  {name}: {seconds} s")
    largest = facts["largest_dealer"]
    click.echo(
        f"Largest dealer {largest['slug']} ({largest['visible_cases']:,} visible cases): "
        f"{largest['agent_email']}, password {facts['password']!r}. Facts in {target}:"
    )
    click.echo(json.dumps(facts, ensure_ascii=False))


@bench.command("run")
@click.option(
    "--profile",
    "profile_name",
    default="S",
    show_default=True,
    type=click.Choice(["XS", "S", "M"], case_sensitive=False),
    help="The profile the configured database was seeded with (its facts file is used).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=OUT_DIR,
    show_default=True,
    help="Directory for report.md and report.json.",
)
@click.option("--rounds", type=int, default=200, show_default=True)
@click.option(
    "--only",
    multiple=True,
    type=click.Choice(
        ["inbox", "phone", "search", "duplicates", "http", "cti", "fanout", "shares"]
    ),
    help="Run only these scenario groups (repeatable); default: all.",
)
def run_command(profile_name: str, out: Path, rounds: int, only: tuple[str, ...]) -> None:
    """Run the scenario suite against the configured, seeded PostgreSQL database and write
    report.md and report.json (product, floor, ratio and target per scenario)."""
    from bench.suite import run_suite
    from portal.config import ConfigError, load_config

    try:
        config = load_config({"CHECK_MIGRATIONS": False})
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    profile = profile_name.upper()
    if not (OUT_DIR / f"seed-{profile}.json").exists():
        raise click.ClickException(
            f"no facts for profile {profile}: run `portal bench seed --profile {profile}` first"
        )
    results = run_suite(str(config["DATABASE_URL"]), profile, out, rounds, set(only) or None)
    for result in results:
        status = {True: "ok", False: "MISSED", None: "-"}[result.met]
        click.echo(
            f"{status:>6}  {result.name}: ratio {result.ratio} (target {result.target_ratio})"
        )
    click.echo(f"Report: {out / 'report.md'}")
