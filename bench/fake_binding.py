"""A fake of AKS's identity binding endpoint for bench/run.sh, on one loopback port, over
TLS with the certificate and key it is given (a name's certificate, issued by a CA the bench
makes): `POST /` with the client credentials form whose `client_assertion` is a service
account token, answered with an Entra access token for ACR (tenant `bench-tenant`) and
`expires_in`, as upstream's acr-credential-provider reads it. Runs until killed."""
import base64
import json
import ssl
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs


def b64(value):
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        form = parse_qs(self.rfile.read(int(self.headers.get("Content-Length", 0))).decode())
        ok = (self.path == "/" and form.get("grant_type") == ["client_credentials"]
              and "client_assertion" in form)
        token = b64({"alg": "RS256"}) + "." + b64({"tid": "bench-tenant", "exp": int(time.time()) + 3600}) + ".sig"
        body = json.dumps({"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                          if ok else {"error": "invalid_request"}).encode()
        self.send_response(200 if ok else 400)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
