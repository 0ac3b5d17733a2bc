#!/usr/bin/env python3
"""A subscriber that is always down: answers every event 503 with a short text body.

  --port N   listen on 127.0.0.1:N (default 9101; 0 picks a free port)

Standard library only. Sluice retries a 503 and, once the retries are spent, sends the event
to the trigger's dead-letter sink (see dead_letters.py).
"""
import argparse
from http.server import BaseHTTPRequestHandler, HTTPServer

REASON = b"inventory database unavailable"

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--port", type=int, default=9101)
args = args.parse_args()


class Fail(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        print(f"{self.path}: refused {self.headers.get('ce-id')} with 503", flush=True)
        self.send_response(503)
        self.send_header("content-type", "text/plain")
        self.send_header("content-length", str(len(REASON)))
        self.end_headers()
        self.wfile.write(REASON)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", args.port), Fail)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
