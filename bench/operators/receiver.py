#!/usr/bin/env python3
"""receiver.py PORT: a lean webhook receiver for bench/operators/run. HTTP/1.1
keep-alive, answers 204 to every POST and counts them; GET /count returns the
count. `receiver.py client PORT N` is the reference sender: N keep-alive POSTs
of a typical event body from one connection, printing requests per second."""
import http.client, http.server, json, sys, threading, time

if sys.argv[1] == "client":
    port, n = int(sys.argv[2]), int(sys.argv[3])
    body = json.dumps({"topic": "device.enrolled", "event_id": "x" * 36,
                       "created_at": "2026-11-29T00:00:00Z", "device": {"id": "0" * 25}}).encode()
    c = http.client.HTTPConnection("127.0.0.1", port)
    t = time.monotonic()
    for _ in range(n):
        c.request("POST", "/hook", body, {"Content-Type": "application/json", "X-Steward-Signature": "t=1,v1=" + "0" * 64})
        c.getresponse().read()
    print(f"{n / (time.monotonic() - t):.0f}")
    sys.exit(0)

count = 0
lock = threading.Lock()


class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            count += 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self):
        b = str(count).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)

    def log_message(self, *a):
        pass


http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
