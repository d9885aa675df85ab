"""Fakes of Azure IMDS, Entra ID's token endpoint and ACR's token exchange for bench/run.sh,
on one loopback port.
IMDS as "How to use managed identities for Azure resources on an Azure VM to acquire an
access token" documents it: `GET /metadata/identity/oauth2/token?api-version=…&resource=…`
with `Metadata: true`, answered with an access token (`expires_in` a string). The exchange as
ACR's Entra ID integration documents it: `POST /oauth2/exchange` with `grant_type=access_token`,
`service`, `tenant` and `access_token`, answered with a refresh token, a JWT whose `exp` is
three hours on. Entra ID as its client credentials flow documents it: `POST
/<tenant>/oauth2/v2.0/token` with `grant_type=client_credentials`, `client_id`, `scope` and a
`client_assertion` (here a workload's service account token), answered with an access token.
For the fleet simulation (bench/fleet.py) it also keeps a simulated clock, moved with
`POST /_clock?offset=<seconds>` as pullcred's is moved with PULLCRED_TEST_CLOCK_OFFSET, so
token lifetimes stay true, and counts calls: `GET /_stats`. Runs until killed."""
import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

OFFSET = [0]
STATS = {"imds": 0, "entra": 0, "exchange": 0}


def now():
    return int(time.time()) + OFFSET[0]


def b64(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def answer(self, status, value):
        body = json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/_stats":
            return self.answer(200, STATS)
        ok = (
            self.headers.get("Metadata") == "true"
            and url.path == "/metadata/identity/oauth2/token"
            and query.get("resource") in (["https://containerregistry.azure.net"], ["https://vault.azure.net"])
        )
        if not ok:
            return self.answer(400, {"error": "invalid_request"})
        STATS["imds"] += 1
        token = b64({"alg": "RS256"}) + "." + b64({"tid": "bench-tenant"}) + ".sig"
        self.answer(200, {"access_token": token, "expires_in": "86399", "token_type": "Bearer"})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        if self.path.startswith("/_clock"):
            OFFSET[0] = int(parse_qs(urlsplit(self.path).query)["offset"][0])
            return self.answer(200, {"offset": OFFSET[0]})
        if self.path.endswith("/oauth2/v2.0/token"):
            STATS["entra"] += 1
            ok = (
                form.get("grant_type") == ["client_credentials"]
                and form.get("scope") == ["https://containerregistry.azure.net/.default"]
                and "client_assertion" in form
            )
            if not ok:
                return self.answer(400, {"error": "invalid_request"})
            tenant = self.path.split("/")[1]
            exp = now() + 3600
            token = b64({"alg": "RS256"}) + "." + b64({"tid": tenant, "exp": exp}) + ".sig"
            return self.answer(200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"})
        ok = (
            self.path == "/oauth2/exchange"
            and form.get("grant_type") == ["access_token"]
            and form.get("tenant") == ["bench-tenant"]
            and "access_token" in form
        )
        if not ok:
            return self.answer(400, {"errors": [{"code": "DENIED", "message": "bad form"}]})
        STATS["exchange"] += 1
        refresh = b64({"alg": "RS256"}) + "." + b64({"exp": now() + 3 * 3600}) + ".sig"
        self.answer(200, {"refresh_token": refresh})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
