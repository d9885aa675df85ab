"""Fakes of three secret stores and two platform identity endpoints for bench/run.sh, on one
loopback port, each answering as its API documents it: Google Secret Manager's `versions.access`
(`GET /v1/projects/P/secrets/S/versions/V:access`, the payload's `data` in base64 with its
`dataCrc32c`), Azure Key Vault's `GET /secrets/<name>?api-version=7.4` (`value`), and
Vault's AppRole login (`POST /v1/auth/approle/login`, a token and its lease) and KV v2 read
(`GET /v1/secret/data/<path>` with `X-Vault-Token`); Google STS's token exchange for GKE
(`POST /sts`, a federated token) and EKS Auth's `AssumeRoleForPodIdentity`
(`POST /clusters/<cluster>/assume-role-for-pod-identity`, role credentials and the subject).
Each wants the credential its tokens come with (a bearer token, a Vault token, a signature).
Runs until killed."""
import base64
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VALUE = json.dumps({"username": "robot", "password": "bench-store-pw"})


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


class Handler(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        bearer = self.headers.get("Authorization", "").startswith("Bearer ")
        if self.path.endswith(":access") and bearer:
            raw = VALUE.encode()
            return self.answer(200, {"name": self.path[4:-7], "payload": {
                "data": base64.b64encode(raw).decode(), "dataCrc32c": str(crc32c(raw))}})
        if self.path.startswith("/secrets/") and self.path.endswith("?api-version=7.4") and bearer:
            return self.answer(200, {"value": VALUE, "attributes": {"enabled": True}})
        if self.path.startswith("/v1/secret/data/") and self.headers.get("X-Vault-Token") == "bench-vault-token":
            return self.answer(200, {"data": {"data": json.loads(VALUE), "metadata": {"version": 1}}})
        self.answer(403, {"errors": ["permission denied"]})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path == "/sts" and b"identitynamespace" in body:
            return self.answer(200, {"access_token": "bench-gke-federated", "expires_in": 3599,
                                     "token_type": "Bearer"})
        if self.path.endswith("/assume-role-for-pod-identity") and "eks-auth" in self.headers.get("Authorization", ""):
            claims = json.loads(base64.urlsafe_b64decode(json.loads(body)["token"].split(".")[1] + "=="))
            k8s = claims["kubernetes.io"]
            return self.answer(200, {
                "subject": {"namespace": k8s["namespace"], "serviceAccount": k8s["serviceaccount"]["name"]},
                "audience": "pods.eks.amazonaws.com",
                "credentials": {"accessKeyId": "ASIABENCHPOD0000001", "secretAccessKey": "bench-pod-secret",
                                "sessionToken": "bench-pod-session", "expiration": claims["exp"]}})
        if self.path == "/v1/auth/approle/login":
            return self.answer(200, {"auth": {"client_token": "bench-vault-token", "lease_duration": 3600}})
        self.answer(404, {"errors": []})

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
