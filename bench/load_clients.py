"""The load test's clients (bench/load_bench.py starts one process per user): the users it
signs in as, the mix of requests each runs, a tiny HTTP client and the recorder of every
request's time and outcome. No Django here: the clients see loudou only over HTTP, as browsers
and API clients do."""

import datetime as dt
import http.client
import json
import random
import signal
import time
import urllib.parse
from http.cookies import SimpleCookie
from typing import Any

PASSWORD = "loudou-demo"
HOST = "127.0.0.1"
# Five sellers, the managers of two of them, an executive: who sees what overlaps (a manager
# and a seller of his branch, the executive and everyone), so some moves race.
USERS = [
    "seller",
    "liu.yang",
    "manager",
    "xie.ting",
    "chen.zhiyuan",
    "luo.bin",
    "zheng.hui",
    "jiang.hao",
]
TOKEN_NAME = "load bench"
PLAIN = "/bench/plain/"
MIX = [("board", 30.0), ("page", 30.0), ("api", 25.0), ("move", 7.5), ("evidence", 7.5)]
API_MIX = [("api list", 35), ("api detail", 35), ("api funnel", 20), ("api forecast", 10)]
MOVE_STAGES = ("discover", "intent")  # intent's criteria are all checks: evidence opens its gate
INTENT_EVIDENCE = (
    "interested",
    "accepts_packaged",
    "preliminary_requirements",
    "contacting_vendors",
)
CHECK_CRITERIA = [
    "discover.need_found",
    "intent.interested",
    "intent.preliminary_requirements",
    "project.recognises_us",
    "project.has_requirement",
    "project.guiding",
    "recognition.product_accepted",
    "recognition.shortlisted",
    "negotiation.accepted_us",
    "negotiation.sole_or_shortlisted",
]
KIND_ORDER = [
    "board",
    "opportunity page",
    "api list",
    "api detail",
    "api funnel",
    "api forecast",
    "advance",
    "regress",
    "evidence",
]


class Client:
    """A tiny HTTP client over http.client: a fresh connection per request (gunicorn's sync
    workers close every connection anyway) and a cookie jar of name → value."""

    def __init__(self, port: int, token: str = "") -> None:
        self.port = port
        self.token = token
        self.cookies: dict[str, str] = {}

    def call(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: Any = None,
        api: bool = False,
    ) -> tuple[int, bytes]:
        headers = {"Accept-Language": "zh-hans"}
        data = None
        if api:
            headers["Authorization"] = f"Bearer {self.token}"
            headers["Accept"] = "application/json"
            if body is not None:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        else:
            if self.cookies:
                headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if form is not None:
                data = urllib.parse.urlencode(form).encode()
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            if not api:
                for header in response.msg.get_all("Set-Cookie") or []:
                    for name, morsel in SimpleCookie(header).items():
                        if morsel.value:
                            self.cookies[name] = morsel.value
                        else:
                            self.cookies.pop(name, None)
            return response.status, payload
        finally:
            conn.close()


class Recorder:
    """Each request's kind, start, latency and outcome, for the phase it started in."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, float, str]] = []
        self.samples: dict[str, list[str]] = {}

    def timed(
        self, kind: str, client: Client, method: str, path: str, ok: tuple[int, ...], **kw: Any
    ) -> tuple[int, bytes]:
        start = time.time()
        t0 = time.perf_counter()
        try:
            status, payload = client.call(method, path, **kw)
        except (OSError, http.client.HTTPException) as exc:
            self.rows.append((kind, start, time.perf_counter() - t0, "error"))
            self._sample(kind, f"{method} {path}: {type(exc).__name__}: {exc}")
            return 0, b""
        elapsed = time.perf_counter() - t0
        if status in ok:
            outcome = "ok"
        elif status == 409 and _problem_code(payload) == "conflict":
            outcome = "conflict"
        else:
            outcome = "error"
            self._sample(kind, f"{method} {path}: {status} {payload[:400]!r}")
        self.rows.append((kind, start, elapsed, outcome))
        return status, payload

    def _sample(self, kind: str, text: str) -> None:
        samples = self.samples.setdefault(kind, [])
        if len(samples) < 5:
            samples.append(text)


def _problem_code(payload: bytes) -> str:
    try:
        return str(json.loads(payload).get("code", ""))
    except (ValueError, AttributeError):
        return ""


def _sign_in(client: Client, username: str) -> None:
    status, _body = client.call("GET", "/login/")
    if status != 200 or "csrftoken" not in client.cookies:
        raise RuntimeError(f"{username}: GET /login/ answered {status} without a CSRF cookie")
    form = {
        "username": username,
        "password": PASSWORD,
        "csrfmiddlewaretoken": client.cookies["csrftoken"],
    }
    status, _body = client.call("POST", "/login/", form=form)
    if status != 302 or "sessionid" not in client.cookies:
        raise RuntimeError(f"{username}: signing in answered {status}; is this the demo company?")


def _visible_open_deals(client: Client) -> list[tuple[int, str]]:
    """(id, stage key) of every open deal the user may see, via the API."""
    deals, page = [], 1
    while True:
        status, payload = client.call(
            "GET", f"/api/v1/opportunities?status=open&page_size=200&page={page}", api=True
        )
        if status != 200:
            raise RuntimeError(f"listing deals answered {status}: {payload[:300]!r}")
        data = json.loads(payload)
        deals += [(r["id"], r["stage"]["key"]) for r in data["results"]]
        if page >= data["pages"]:
            return deals
        page += 1


def _this_quarter() -> str:
    today = dt.date.today()
    return f"{today.year}Q{(today.month - 1) // 3 + 1}"


class User:
    """One simulated user: the requests of the mix, drawn at random with the mix's weights."""

    def __init__(self, username: str, port: int, token: str, seed: int) -> None:
        self.username = username
        self.web = Client(port)
        self.api = Client(port, token)
        self.anonymous = Client(port)
        self.rng = random.Random(seed)
        self.rec = Recorder()
        self.deals: list[int] = []
        self.movable: list[int] = []
        self.writable: list[int] = []
        self.writer = True
        self.quarter = _this_quarter()

    def prepare(self) -> dict[str, Any]:
        _sign_in(self.web, self.username)
        status, payload = self.api.call("GET", "/api/v1/me", api=True)
        level = json.loads(payload).get("access_level", "") if status == 200 else ""
        deals = _visible_open_deals(self.api)
        self.writer = level != "executive"
        self.deals = [pk for pk, _stage in deals]
        self.movable = [pk for pk, stage in deals if stage in MOVE_STAGES]
        self.writable = self.deals if self.writer else []
        if not self.writer:
            self.movable = []
        return {
            "user": self.username,
            "level": level,
            "open deals visible": len(self.deals),
            "movable": len(self.movable),
        }

    def one(self) -> None:
        kind = _draw(self.rng, MIX)
        if kind in ("move", "evidence") and not (self.movable if kind == "move" else self.writable):
            kind = _draw(self.rng, MIX[:3])  # executives: the reads, in proportion
        if kind == "board":
            self.rec.timed("board", self.web, "GET", "/board/", (200,))
        elif kind == "page":
            pk = self.rng.choice(self.deals)
            self.rec.timed("opportunity page", self.web, "GET", f"/opportunities/{pk}/", (200,))
        elif kind == "api":
            self.api_read()
        elif kind == "move":
            self.move(self.rng.choice(self.movable))
        else:
            pk = self.rng.choice(self.writable)
            body = {
                "criterion": self.rng.choice(CHECK_CRITERIA),
                "note": "Load test: the customer confirmed it in the weekly call.",
            }
            path = f"/api/v1/opportunities/{pk}/evidence"
            self.rec.timed("evidence", self.api, "POST", path, (201,), body=body, api=True)

    def api_read(self) -> None:
        kind = _draw(self.rng, API_MIX)
        if kind == "api list":
            sort = self.rng.choice(["-created_at", "close_date", "-amount", "stage"])
            path = f"/api/v1/opportunities?status=open&sort={sort}&page_size=50"
        elif kind == "api detail":
            path = f"/api/v1/opportunities/{self.rng.choice(self.deals)}"
        elif kind == "api funnel":
            path = "/api/v1/analytics/funnel"
        else:
            path = f"/api/v1/analytics/forecast?period={self.quarter}"
        self.rec.timed(kind, self.api, "GET", path, (200,), api=True)

    def move(self, pk: int) -> None:
        """Read the deal (its version), then move it to the other of the two stages."""
        status, payload = self.rec.timed(
            "api detail", self.api, "GET", f"/api/v1/opportunities/{pk}", (200,), api=True
        )
        if status != 200:
            return
        deal = json.loads(payload)
        version, stage = deal["version"], deal["stage"]["key"]
        base = f"/api/v1/opportunities/{pk}"
        if stage == "intent":
            body = {
                "to_stage": "discover",
                "reason": "Load test: the customer paused the project for a budget review.",
                "expected_version": version,
            }
            self.rec.timed(
                "regress", self.api, "POST", f"{base}/regress", (200,), body=body, api=True
            )
        elif stage == "discover":
            body = {
                "to_stage": "intent",
                "evidence": {
                    f"intent.{key}": "Load test: confirmed in the call." for key in INTENT_EVIDENCE
                },
                "expected_version": version,
            }
            self.rec.timed(
                "advance", self.api, "POST", f"{base}/advance", (200,), body=body, api=True
            )
        else:
            self.rec.rows.append(("advance", time.time(), 0.0, "error"))
            self.rec._sample("advance", f"deal {pk} is at {stage}, outside the two move stages")

    def plain(self) -> None:
        self.rec.timed("plain JsonResponse", self.anonymous, "GET", PLAIN, (200,))


def _draw(rng: random.Random, weighted: list[tuple[str, float]]) -> str:
    return rng.choices([k for k, _w in weighted], weights=[w for _k, w in weighted])[0]


def client_main(username: str, port: int, token: str, seed: int, conn: Any) -> None:
    """A client process: prepare, report, receive the phases, run them, send the rows back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    try:
        user = User(username, port, token, seed)
        conn.send(("ready", user.prepare()))
        phases = conn.recv()
        phase_cpu = {}
        for name, start, end in phases:
            while time.time() < start:
                time.sleep(min(0.01, max(start - time.time(), 0)))
            cpu0 = time.process_time()
            step = user.plain if name.startswith("plain") else user.one
            while time.time() < end:
                step()
            phase_cpu[name] = time.process_time() - cpu0
        conn.send(("done", {"rows": user.rec.rows, "samples": user.rec.samples, "cpu": phase_cpu}))
    except Exception as exc:  # reported to the parent, which fails the run
        conn.send(("failed", f"{username}: {type(exc).__name__}: {exc}"))
