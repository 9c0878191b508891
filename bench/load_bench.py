"""Load test: 8 users at once against loudou served by gunicorn on loopback, for a fixed time.

    LOUDOU_VAR_DIR=/tmp/loadbench .venv/bin/python bench/load_bench.py [--duration 60]
        [--users 8] [--workers 2] [--yardstick 20] [--warmup 5] [--json FILE]
    scripts/with-postgres env LOUDOU_VAR_DIR=/tmp/loadbench-pg .venv/bin/python bench/load_bench.py

It runs against the database the environment names (LOUDOU_VAR_DIR's SQLite file, or
DATABASE_URL), which must hold the demo company (`loudou demo --size large`; the demo users'
password is `loudou-demo`). It writes to it (stage moves, evidence, history, audit): use a copy.

What it does:
1. `migrate` and `collectstatic` (as a deployment does), then one personal API token per user through `loudou.api.services`
   (revoked at the end).
2. Starts gunicorn (sync workers, `--workers`) on a free port of 127.0.0.1 with production
   settings (LOUDOU_DEBUG=0, a random secret key, LOUDOU_ALLOWED_HOSTS=127.0.0.1,
   LOUDOU_SECURE_COOKIES=0 since this is plain http), serving `bench/load_plain.py`: the product
   plus one plain `JsonResponse` route, the yardstick. gunicorn is stopped on exit and on Ctrl-C.
3. One client process per user (bench/load_clients.py; processes, not threads, so the generator is not held by one
   Python lock): signs in through the login form (session cookie and CSRF token, as a browser
   does) and lists the open deals it may see through the API (the visibility rule decides).
4. Phases, the same in every process: warm-up (not counted); the yardstick (half); the mixed
   workload; the yardstick (other half, so noise drifting during the run falls on both). Each
   user runs requests back to back, without think time:
     30 % board (`/board/`), 30 % opportunity page (`/opportunities/<pk>/`),
     25 % API reads (list 35 %, detail 35 %, funnel 20 %, forecast of this quarter 10 %),
     7.5 % stage moves (read the deal through the API for its version, then move it between
          the first two open stages: `regress` with a reason, or `advance` with the evidence
          its gate asks for, both with `expected_version`),
     7.5 % evidence (`POST .../evidence` on a check criterion).
   Executives read but do not sell (the services refuse them writes): their 15 % of writes go
   to the reads in proportion.
5. Prints per kind of request: count, errors, conflicts (409 `conflict`: another user moved the
   deal between the read and the write, the correct answer to a race), throughput, p50 and p99;
   the yardstick's; their ratio; and the CPU the server, the clients and the machine spent.

An error is a 5xx, a connection error, or any status the request should not get (a redirect to
the login page, a 404 on a visible deal, a gate refusal, a 400). The exit status is 1 if any
request failed, in the warm-up too.
"""

import argparse
import contextlib
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from load_clients import HOST, KIND_ORDER, PLAIN, TOKEN_NAME, USERS, Client, client_main

BENCH_DIR = Path(__file__).resolve().parent


def production_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        LOUDOU_DEBUG="0",
        LOUDOU_SECRET_KEY=env.get("LOUDOU_SECRET_KEY") or secrets.token_urlsafe(50),
        LOUDOU_ALLOWED_HOSTS=HOST,
        LOUDOU_SECURE_COOKIES="0",
        LOUDOU_LOG_FORMAT="json",  # the request log gives each request's time inside Django
        DJANGO_SETTINGS_MODULE="loudou.settings",
    )
    return env


def make_tokens(usernames: list[str]) -> tuple[dict[str, str], list[int]]:
    """A personal API token per user, made by the service (the CLI's `loudou token create`)."""
    import django

    django.setup()
    from django.db import connections

    from loudou.api.services import token_create
    from loudou.org.models import User as UserModel

    secrets_by_user, ids = {}, []
    for username in usernames:
        user = UserModel.objects.get(username=username)
        token, secret = token_create(actor=user, name=TOKEN_NAME)
        secrets_by_user[username] = secret
        ids.append(token.pk)
    connections.close_all()
    return secrets_by_user, ids


def revoke_tokens(ids: list[int]) -> None:
    from django.db import connections

    from loudou.api.models import ApiToken
    from loudou.api.services import token_revoke

    for token in ApiToken.objects.filter(pk__in=ids).select_related("user"):
        token_revoke(actor=token.user, token=token.pk)
    connections.close_all()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Server:
    """gunicorn in its own process group, stopped (TERM, then KILL) whatever happens."""

    def __init__(self, env: dict[str, str], workers: int, log: Path) -> None:
        self.port = free_port()
        self.log = log
        cmd = [
            sys.executable,
            "-m",
            "gunicorn",
            "--pythonpath",
            str(BENCH_DIR),
            "load_plain:application",
            "--workers",
            str(workers),
            "--worker-class",
            "sync",
            "--bind",
            f"{HOST}:{self.port}",
            "--access-logfile",
            "/dev/null",
            "--error-logfile",
            "-",
            "--backlog",
            "256",
        ]
        self.log_file = log.open("w")
        self.proc = subprocess.Popen(
            cmd, env=env, stdout=self.log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: see {self.log}")
            try:
                status, _body = Client(self.port).call("GET", PLAIN)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"gunicorn did not answer within {timeout} s: see {self.log}")

    def pids(self) -> list[int]:
        """The master and its workers."""
        found = [self.proc.pid]
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    found.append(int(entry))
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log_file.close()


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest rank."""
    if not sorted_values:
        return float("nan")
    rank = max(1, math.ceil(q * len(sorted_values) - 1e-9))
    return sorted_values[min(rank, len(sorted_values)) - 1]


SERVER_KINDS = [
    (re.compile(r"GET /board/$"), "board"),
    (re.compile(r"GET /opportunities/\d+/$"), "opportunity page"),
    (re.compile(r"GET /api/v1/opportunities$"), "api list"),
    (re.compile(r"GET /api/v1/opportunities/\d+$"), "api detail"),
    (re.compile(r"GET /api/v1/analytics/funnel$"), "api funnel"),
    (re.compile(r"GET /api/v1/analytics/forecast$"), "api forecast"),
    (re.compile(r"POST /api/v1/opportunities/\d+/advance$"), "advance"),
    (re.compile(r"POST /api/v1/opportunities/\d+/regress$"), "regress"),
    (re.compile(r"POST /api/v1/opportunities/\d+/evidence$"), "evidence"),
    (re.compile(r"GET /bench/plain/$"), "plain JsonResponse"),
]


def server_times(log_text: str) -> list[tuple[str, float, float]]:
    """(kind, start, ms) of each request in the server's request log (one JSON line per
    request, `duration_ms` measured around the whole middleware stack): the time inside Django,
    without the wait in gunicorn's listen queue."""
    found = []
    for line in log_text.splitlines():
        if not line.startswith("{") or '"duration_ms"' not in line:
            continue
        try:
            entry = json.loads(line)
            end = dt.datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
            ms = float(entry["duration_ms"])
            key = f"{entry['method']} {entry['path']}"
        except (ValueError, KeyError, TypeError):
            continue
        for pattern, kind in SERVER_KINDS:
            if pattern.match(key):
                found.append((kind, end - ms / 1000, ms))
                break
    return found


def summarise(rows: list[tuple[str, float, float, str]], seconds: float) -> dict[str, dict]:
    by_kind: dict[str, list[tuple[float, str]]] = {}
    for kind, _start, elapsed, outcome in rows:
        by_kind.setdefault(kind, []).append((elapsed, outcome))
    out = {}
    for kind, items in by_kind.items():
        times = sorted(e * 1000 for e, outcome in items if outcome != "error" or e > 0)
        out[kind] = {
            "count": len(items),
            "errors": sum(1 for _e, o in items if o == "error"),
            "conflicts": sum(1 for _e, o in items if o == "conflict"),
            "req_per_s": len(items) / seconds,
            "p50_ms": percentile(times, 0.50),
            "p99_ms": percentile(times, 0.99),
        }
    return out


def _interrupted(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    # Ctrl-C and kill stop gunicorn and the clients (the `finally` below), even when the shell
    # started us with SIGINT ignored (a background job).
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, _interrupted)
    env = production_env()
    os.environ.update(env)
    tmp = Path(tempfile.mkdtemp(prefix="loudou-load-"))
    # What a deployment does before it starts the server (docs/operations.md).
    loudou = [sys.executable, "-m", "loudou"]
    subprocess.run([*loudou, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    if not args.skip_collectstatic:
        subprocess.run([*loudou, "collectstatic", "--noinput", "-v", "0"], env=env, check=True)
    usernames = USERS[: args.users]
    tokens, token_ids = make_tokens(usernames)
    server = Server(env, args.workers, tmp / "gunicorn.log")
    procs: list[Any] = []

    try:
        server.wait_ready()
        ctx = mp.get_context("spawn")
        pipes = []
        for i, username in enumerate(usernames):
            parent_end, child_end = ctx.Pipe()
            proc = ctx.Process(
                target=client_main,
                args=(username, server.port, tokens[username], args.seed + i, child_end),
                daemon=True,
            )
            proc.start()
            procs.append(proc)
            pipes.append(parent_end)
        users = []
        for pipe in pipes:
            tag, info = pipe.recv()
            if tag != "ready":
                raise RuntimeError(info)
            users.append(info)

        t = time.time() + 1.0
        half = args.yardstick / 2
        phases = []
        for name, length in (
            ("warmup", args.warmup),
            ("plain1", half),
            ("mix", args.duration),
            ("plain2", half),
        ):
            phases.append((name, t, t + length))
            t += length + 1.0  # a second for the last requests of a phase to finish
        for pipe in pipes:
            pipe.send(phases)

        load_before = Path("/proc/loadavg").read_text().split()[0]
        marks: dict[str, tuple[float, float, tuple[float, float]]] = {}
        for name, start, end in phases:
            time.sleep(max(start - time.time(), 0))
            first = (server.cpu_seconds(), time.time(), machine_cpu())
            time.sleep(max(end - time.time(), 0))
            marks[name] = (first, (server.cpu_seconds(), time.time(), machine_cpu()))

        results = []
        for pipe in pipes:
            tag, info = pipe.recv()
            if tag != "done":
                raise RuntimeError(info)
            results.append(info)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        server.stop()
        revoke_tokens(token_ids)

    report = build_report(args, users, phases, marks, results, load_before, server.log)
    print_report(report)
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False))
    failed = report["total"]["errors"] + report["yardstick"]["errors"] + report["warmup_errors"]
    if failed:
        print(f"\ngunicorn's log (one JSON line per request): {server.log}")
        return 1
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def build_report(
    args: argparse.Namespace,
    users: list[dict],
    phases: list[tuple[str, float, float]],
    marks: dict,
    results: list[dict],
    load_before: str,
    log: Path,
) -> dict[str, Any]:
    spans = {name: (start, end) for name, start, end in phases}

    def rows_in(*names: str) -> list:
        return [
            row
            for result in results
            for row in result["rows"]
            if any(spans[n][0] <= row[1] < spans[n][1] for n in names)
        ]

    def cpu(*names: str) -> dict[str, float]:
        server = sum(marks[n][1][0] - marks[n][0][0] for n in names)
        busy = sum(marks[n][1][2][0] - marks[n][0][2][0] for n in names)
        total = sum(marks[n][1][2][1] - marks[n][0][2][1] for n in names)
        client = sum(r["cpu"].get(n, 0.0) for r in results for n in names)
        return {
            "server_s": server,
            "clients_s": client,
            "machine_busy": busy / total if total else 0,
        }

    mix_seconds = args.duration
    plain_seconds = args.yardstick
    mix_rows = rows_in("mix")
    warmup_errors = sum(1 for row in rows_in("warmup") if row[3] == "error")
    plain_rows = rows_in("plain1", "plain2")
    kinds = summarise(mix_rows, mix_seconds)
    plain = summarise(plain_rows, plain_seconds).get(
        "plain JsonResponse",
        {"count": 0, "errors": 0, "conflicts": 0, "req_per_s": 0, "p50_ms": 0, "p99_ms": 0},
    )
    all_times = sorted(r[2] * 1000 for r in mix_rows)
    total = {
        "count": len(mix_rows),
        "errors": sum(k["errors"] for k in kinds.values()),
        "conflicts": sum(k["conflicts"] for k in kinds.values()),
        "req_per_s": len(mix_rows) / mix_seconds,
        "p50_ms": percentile(all_times, 0.5),
        "p99_ms": percentile(all_times, 0.99),
    }
    mix_cpu, plain_cpu = cpu("mix"), cpu("plain1", "plain2")
    for block, count, seconds in (
        (mix_cpu, total["count"], mix_seconds),
        (plain_cpu, plain["count"], plain_seconds),
    ):
        block["server_ms_per_req"] = 1000 * block["server_s"] / count if count else 0
        block["clients_ms_per_req"] = 1000 * block["clients_s"] / count if count else 0
        # Cores gunicorn had, and the req/s it would serve with every core to itself: the other
        # processes of a shared machine change the first, hardly the CPU a request costs.
        block["server_cores"] = block["server_s"] / seconds
        block["req_per_s_if_alone"] = (
            1000 * (os.cpu_count() or 1) / block["server_ms_per_req"]
            if block["server_ms_per_req"]
            else 0
        )
    for kind in kinds.values():
        kind["p50_ratio"] = kind["p50_ms"] / plain["p50_ms"] if plain["p50_ms"] else None
    log_text = log.read_text(errors="replace") if log.exists() else ""
    inside: dict[str, list[float]] = {}
    for kind, start, ms in server_times(log_text):
        phase = "mix" if spans["mix"][0] <= start < spans["mix"][1] else None
        if kind == "plain JsonResponse":
            in_plain = any(spans[n][0] <= start < spans[n][1] for n in ("plain1", "plain2"))
            phase = "plain" if in_plain else None
        if phase:
            inside.setdefault(kind, []).append(ms)
    for kind, block in [*kinds.items(), ("plain JsonResponse", plain)]:
        times = sorted(inside.get(kind, []))
        block["server_p50_ms"] = percentile(times, 0.5) if times else None
        block["server_p99_ms"] = percentile(times, 0.99) if times else None
    samples: dict[str, list[str]] = {}
    for result in results:
        for kind, texts in result["samples"].items():
            samples.setdefault(kind, []).extend(texts)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "database": "postgresql" if os.environ.get("DATABASE_URL") else "sqlite",
        "workers": args.workers,
        "users": users,
        "duration_s": mix_seconds,
        "yardstick_s": plain_seconds,
        "load_average_before": load_before,
        "cpus": os.cpu_count(),
        "kinds": {k: kinds[k] for k in KIND_ORDER if k in kinds},
        "total": total,
        "yardstick": plain,
        "warmup_errors": warmup_errors,
        "throughput_ratio": total["req_per_s"] / plain["req_per_s"] if plain["req_per_s"] else None,
        "cpu": {"mix": mix_cpu, "yardstick": plain_cpu},
        "error_samples": {k: v[:5] for k, v in samples.items()},
        "server_log_tracebacks": log_text.count("Traceback"),
        "server_log_tail": log_text[-3000:] if "Traceback" in log_text else "",
    }


def print_report(r: dict[str, Any]) -> None:
    print(
        f"\n{r['database']}, gunicorn sync --workers {r['workers']}, {len(r['users'])} users, "
        f"{r['duration_s']} s mixed + {r['yardstick_s']} s yardstick; {r['cpus']} CPUs, "
        f"load average before {r['load_average_before']}"
    )
    for u in r["users"]:
        print(
            f"  {u['user']:<14} {u['level']:<10} {u['open deals visible']:>5} open deals, "
            f"{u['movable']:>4} to move"
        )

    def ms(value: float | None) -> str:
        return "-" if value is None or value != value else f"{value:.0f}"

    header = (
        f"{'kind':<20}{'count':>7}{'errors':>8}{'409':>6}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'p50/plain':>11}{'in Django p50':>15}{'p99':>7}"
    )
    print("\n" + header + "\n" + "-" * len(header))
    rows = [*r["kinds"].items(), ("total", r["total"]), ("plain JsonResponse", r["yardstick"])]
    for kind, k in rows:
        ratio = (
            f"{k['p50_ratio']:.1f}" if k.get("p50_ratio") else ("1.0" if "plain" in kind else "")
        )
        print(
            f"{kind:<20}{k['count']:>7}{k['errors']:>8}{k['conflicts']:>6}{k['req_per_s']:>8.1f}"
            f"{ms(k['p50_ms']):>9}{ms(k['p99_ms']):>9}{ratio:>11}"
            f"{ms(k.get('server_p50_ms')):>15}{ms(k.get('server_p99_ms')):>7}"
        )
    if r["throughput_ratio"]:
        print(
            f"\nmixed throughput / plain throughput = {r['throughput_ratio']:.3f} "
            f"(1 : {1 / r['throughput_ratio']:.0f})"
        )
    for name, c in r["cpu"].items():
        print(
            f"CPU, {name}: server {c['server_ms_per_req']:.1f} ms/req on {c['server_cores']:.2f} "
            f"cores (all cores: {c['req_per_s_if_alone']:.0f} req/s), clients "
            f"{c['clients_ms_per_req']:.2f} ms/req, machine busy {100 * c['machine_busy']:.0f} %"
        )
    if r["warmup_errors"]:
        print(f"errors during the warm-up (not in the table): {r['warmup_errors']}")
    if r["error_samples"]:
        print("\nerrors (first of each kind):")
        for kind, texts in r["error_samples"].items():
            for text in texts:
                print(f"  {kind}: {text}")
    if r["server_log_tracebacks"]:
        print(
            f"\nserver log: {r['server_log_tracebacks']} tracebacks; tail:\n{r['server_log_tail']}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60, help="mixed phase, seconds")
    parser.add_argument("--yardstick", type=float, default=20, help="plain endpoint, seconds")
    parser.add_argument("--warmup", type=float, default=5, help="seconds, not counted")
    parser.add_argument("--users", type=int, default=8, choices=range(1, len(USERS) + 1))
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument("--skip-collectstatic", action="store_true")
    args = parser.parse_args()
    try:
        return run(args)
    except KeyboardInterrupt:
        print("interrupted: gunicorn stopped, tokens revoked", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
