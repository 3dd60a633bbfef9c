"""Runs schemathesis over every operation of miniapp-contract/openapi.json, once per role.

Started by scripts/fuzz (which installs schemathesis and builds the binary). Starts a fake
WeChat and the real server (embedded default: a fresh SQLite file in a temporary directory, the
demo seeded, the date pinned to 2025-09-15 so the 2025 claim windows are open), signs in as each
role with the demo sign-in, and runs schemathesis with the checks that hold the server to its
document. Prints one line per role and a total; exits 1 on any failure or on fewer requests
than --min-requests.
"""

import argparse
import http.server
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "miniapp-contract" / "openapi.json"
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    ]
)
# (label, demo account); "member" is replaced by a seeded member's id, None signs in as nobody.
ROLES = [
    ("anonymous", None),
    ("member", "member"),
    ("union_reviewer", "union-power"),
    ("service_point_reviewer", "sp-xincheng"),
    ("association_reviewer", "association"),
    ("admin", "admin"),
]


class FakeWeChat(http.server.BaseHTTPRequestHandler):
    """WeChat's server API as it answers strangers: every login or phone code is unknown
    (40029, HTTP 200), access tokens are handed out."""

    appid = "wx" + secrets.token_hex(8)
    secret = secrets.token_hex(16)

    def log_message(self, *args):
        pass

    def answer(self, body, content_type="application/json"):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if urllib.parse.urlparse(self.path).path == "/sns/jscode2session":
            return self.answer({"errcode": 40029, "errmsg": "invalid code"}, "text/plain")
        self.answer({"errcode": 404, "errmsg": "no such api"})

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        path = urllib.parse.urlparse(self.path).path
        if path == "/cgi-bin/stable_token":
            return self.answer({"access_token": "fake-" + secrets.token_hex(8), "expires_in": 7200})
        self.answer({"errcode": 40029, "errmsg": "invalid code"})


def start_wechat():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeWeChat)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def start_server(binary, wechat_url, data_dir):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUZHU_")}
    env.update(
        HUZHU_DATA_DIR=str(data_dir),
        HUZHU_LISTEN="127.0.0.1:0",
        HUZHU_CLOCK__TODAY="2025-09-15",
        HUZHU_AUTH__TOKEN_TTL_SECONDS="86400",
        HUZHU_WECHAT__BASE_URL=wechat_url,
        HUZHU_WECHAT__APPID=FakeWeChat.appid,
        HUZHU_WECHAT__SECRET=FakeWeChat.secret,
        HUZHU_LOG__FORMAT="json",
        HUZHU_LOG__FILTER="warn",
        RUST_LOG="warn",
    )
    log = open(data_dir / "server.log", "w+b")
    process = subprocess.Popen([binary, "serve"], env=env, stdout=subprocess.PIPE, stderr=log)
    out = b""
    deadline = time.time() + 60
    while time.time() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        out += line
        found = re.search(rb"huzhu listening on (http://[\d.:]+)", line)
        if found:
            threading.Thread(target=process.stdout.read, daemon=True).start()
            members = re.findall(rb"^\s+([0-9a-f-]{36})\s", out, re.M)
            return process, found.group(1).decode(), members[0].decode()
    process.kill()
    sys.exit(f"huzhu did not start:\n{out.decode(errors='replace')}")


def sign_in(base, account):
    request = urllib.request.Request(
        base + "/api/v1/auth/dev-login",
        data=json.dumps({"account": account}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)["token"]


def call(base, token, method, path, body=None):
    request = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    with urllib.request.urlopen(request) as response:
        return json.load(response)


def known_objects(base, member):
    """Real ids for the path parameters, so generated requests reach past 404: the member's
    draft claim, an organisation, a staff account, the member, a scheme, an SMS template."""
    admin = sign_in(base, "admin")
    own = sign_in(base, member)
    membership = call(base, own, "GET", "/api/v1/me/memberships")["items"][0]
    claim = call(
        base,
        own,
        "POST",
        "/api/v1/claims",
        {
            "membership_id": membership["id"],
            "event": {
                "kind": "inpatient",
                "admitted_on": "2025-03-01",
                "discharged_on": "2025-03-11",
                "eligible_self_pay": "12000.00",
            },
            "bank_card": "6217000000000000004",
        },
    )["claim"]["id"]
    union = call(base, sign_in(base, "union-power"), "GET", "/api/v1/me")["organisation"]["id"]
    staff = call(base, admin, "GET", "/api/v1/staff?limit=100")["items"][-1]["id"]
    occasion = call(base, admin, "GET", "/api/v1/sms-templates")[0]["occasion"]
    return [
        (r"^/api/v1/claims/\{id\}", {"path.id": claim}),
        (r"^/api/v1/organisations/\{id\}", {"path.id": union}),
        (r"^/api/v1/staff/\{id\}", {"path.id": staff}),
        (r"^/api/v1/members/\{id\}", {"path.id": member}),
        (r"^/api/v1/schemes/\{code\}", {"path.code": membership["scheme_code"]}),
        (r"^/api/v1/authorisation-texts/", {"path.scheme_code": "wj-2022"}),
        (r"^/api/v1/sms-templates/", {"path.occasion": occasion}),
    ]


def write_config(path, objects):
    lines = []
    for regex, parameters in objects:
        lines.append("[[operations]]")
        lines.append(f"include-path-regex = {json.dumps(regex)}")
        lines.append("parameters = { " + ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in parameters.items()) + " }")
        lines.append("")
    path.write_text("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--schemathesis", required=True)
    parser.add_argument("--max-examples", type=int, default=25)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--roles", help="comma-separated labels (default: all)")
    parser.add_argument("--min-requests", type=int, default=1000)
    parser.add_argument("--verbose", action="store_true", help="print schemathesis' reports")
    args = parser.parse_args()

    roles = ROLES
    if args.roles:
        wanted = args.roles.split(",")
        roles = [r for r in ROLES if r[0] in wanted]

    wechat, wechat_url = start_wechat()
    data_dir = Path(tempfile.mkdtemp(prefix="huzhu-fuzz-"))
    process, base, member = start_server(args.binary, wechat_url, data_dir)
    print(f"huzhu on {base}, data in {data_dir}", flush=True)
    write_config(data_dir / "schemathesis.toml", known_objects(base, member))
    started = time.time()
    rows, failed, total = [], False, 0
    try:
        for label, account in roles:
            command = [
                args.schemathesis,
                "run",
                str(DOCUMENT),
                "--url",
                base,
                "--checks",
                CHECKS,
                "--max-examples",
                str(args.max_examples),
                "--no-color",
                "--suppress-health-check",
                "all",
                "--request-timeout",
                "30",
                # "Sign out everywhere" would revoke the very token the run signs in with, and
                # every later request of the role would only meet 401 token_revoked.
                "--exclude-operation-id",
                "revokeMySessions",
            ]
            if args.seed is not None:
                command += ["--seed", str(args.seed)]
            if account:
                token = sign_in(base, member if account == "member" else account)
                command += ["--header", f"Authorization: Bearer {token}"]
            began = time.time()
            run = subprocess.run(command, cwd=data_dir, capture_output=True, text=True)
            seconds = time.time() - began
            output = run.stdout + run.stderr
            generated = re.search(r"(\d+) generated", output)
            count = int(generated.group(1)) if generated else 0
            total += count
            ok = run.returncode == 0
            failed |= not ok
            rows.append((label, count, ok, seconds))
            print(f"{label:<24} {count:>6} test cases  {'ok' if ok else 'FAILED'}  {seconds:6.1f} s", flush=True)
            if not ok or args.verbose:
                print(output, flush=True)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        wechat.shutdown()
    # Our own errors (actix-http's complaints about undecodable headers are the fuzzer's doing).
    errors = [
        line
        for line in (data_dir / "server.log").read_text(errors="replace").splitlines()
        if '"level":"ERROR"' in line and '"target":"huzhu' in line
    ]
    if errors:
        print("server errors logged:\n" + "\n".join(errors)[:5000])
        failed = True
    minutes = (time.time() - started) / 60
    print(f"total: {total} test cases over {len(rows)} roles in {minutes:.1f} min; " + ("FAILED" if failed else "no failures"))
    if total < args.min_requests:
        print(f"error: fewer than {args.min_requests} test cases", file=sys.stderr)
        failed = True
    if not failed:
        shutil.rmtree(data_dir, ignore_errors=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
