"""The webhook receiver of the tests: a real HTTP server on loopback that
verifies every delivery with an implementation independent of bizos, the
`standardwebhooks` package (PyPI).

    python webhook_receiver.py HOST PORT      (PORT 0: any free port)

It prints `webhook receiver on HOST:PORT` once it listens. Each test uses
endpoints of its own name:

    PUT  /_endpoints/NAME   {"secrets": ["whsec_..."], "status": 200}
         what POST /hooks/NAME answers (status, default 200) and the
         secrets every delivery is verified with
    POST /hooks/NAME        a delivery: recorded, then answered
    GET  /_endpoints/NAME   {"received": [{"id", "timestamp", "signature",
         "body", "verified": [one boolean per secret], "errors": [...],
         "answered": status}]} in arrival order

A delivery is verified with Webhook(secret).verify(body, headers) for each
configured secret: its signature header must carry a valid v1 signature of
that secret and its timestamp must be within 5 minutes.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook

LOCK = threading.Lock()
ENDPOINTS = {}  # name -> {"secrets": [...], "status": int, "received": [...]}


def endpoint(name):
    return ENDPOINTS.setdefault(name, {"secrets": [], "status": 200, "received": []})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, body=b""):
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def read_body(self):
        n = int(self.headers.get("content-length") or 0)
        return self.rfile.read(n) if n else b""

    def do_PUT(self):
        if not self.path.startswith("/_endpoints/"):
            return self.answer(404)
        name = self.path[len("/_endpoints/"):]
        config = json.loads(self.read_body() or b"{}")
        with LOCK:
            e = endpoint(name)
            e["secrets"] = list(config.get("secrets", []))
            e["status"] = int(config.get("status", 200))
        self.answer(204)

    def do_GET(self):
        if not self.path.startswith("/_endpoints/"):
            return self.answer(404)
        name = self.path[len("/_endpoints/"):]
        with LOCK:
            body = json.dumps({"received": endpoint(name)["received"]}).encode()
        self.answer(200, body)

    def do_POST(self):
        if not self.path.startswith("/hooks/"):
            return self.answer(404)
        name = self.path[len("/hooks/"):]
        raw = self.read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        with LOCK:
            e = endpoint(name)
            secrets, status = list(e["secrets"]), e["status"]
        verified, errors = [], []
        for secret in secrets:
            try:
                Webhook(secret).verify(raw, headers)
                verified.append(True)
                errors.append(None)
            except Exception as err:  # the package's verification errors
                verified.append(False)
                errors.append(str(err))
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        record = {
            "id": headers.get("webhook-id"),
            "timestamp": headers.get("webhook-timestamp"),
            "signature": headers.get("webhook-signature"),
            "content_type": headers.get("content-type"),
            "body": body,
            "verified": verified,
            "errors": errors,
            "answered": status,
        }
        with LOCK:
            e["received"].append(record)
        self.answer(status, b'{"ok": true}' if status < 300 else b'{"error": "failing on purpose"}')


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    print("webhook receiver on %s:%d" % server.server_address[:2], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
