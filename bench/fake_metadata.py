"""A fake of the GCE metadata server for bench/run.sh, following Google's "Access tokens for
service accounts" and "About VM metadata": it answers `GET .../service-accounts/<sa>/token`
that carries `Metadata-Flavor: Google` with a JSON access token and the same header, and the
instance attribute `google-dockercfg` with a legacy docker config. Loopback
only; it runs until killed."""
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


DOCKERCFG = json.dumps({"registry.bench.example": {"username": "robot", "password": "bench-gce-pw"}})


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/computeMetadata/v1/instance/attributes/google-dockercfg":
            body = DOCKERCFG.encode()
            self.send_response(200 if self.headers.get("Metadata-Flavor") == "Google" else 403)
            self.send_header("Metadata-Flavor", "Google")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        ok = self.headers.get("Metadata-Flavor") == "Google" and self.path.endswith("/token")
        body = json.dumps(
            {"access_token": "bench-gcp-token", "expires_in": 3599, "token_type": "Bearer"}
            if ok
            else {"error": "refused"}
        ).encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Metadata-Flavor", "Google")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
