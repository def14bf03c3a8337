#!/usr/bin/env python3
"""webhook_receiver.py: a local webhook endpoint for test_operators.sh.
Usage: webhook_receiver.py PORT SECRET OUTDIR [FAIL_FIRST]
Checks every delivery's X-Steward-Signature (t=<ts>,v1=<hex HMAC-SHA256 of
"<ts>.<body>">) and appends one JSON line per request to OUTDIR/received.jsonl
with the event, the signature verdict and the body. Answers 500 to the first
FAIL_FIRST requests (a receiver having trouble), 200 afterwards."""
import hashlib, hmac, http.server, json, os, sys

port, secret, outdir = int(sys.argv[1]), sys.argv[2].encode(), sys.argv[3]
fail_first = int(sys.argv[4]) if len(sys.argv) > 4 else 0
seen = 0


class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global seen
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        sig = self.headers.get("X-Steward-Signature", "")
        parts = dict(p.split("=", 1) for p in sig.split(",") if "=" in p)
        want = hmac.new(secret, parts.get("t", "").encode() + b"." + body, hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(want, parts.get("v1", ""))
        seen += 1
        status = 500 if seen <= fail_first else 200
        with open(os.path.join(outdir, "received.jsonl"), "a") as f:
            f.write(json.dumps({"event": self.headers.get("X-Steward-Event"), "valid": ok,
                                "answered": status, "body": json.loads(body)}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
