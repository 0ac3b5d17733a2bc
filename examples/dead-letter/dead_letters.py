#!/usr/bin/env python3
"""A dead-letter sink: prints each event that could not be delivered, with why, and answers 202.

  --port N   listen on 127.0.0.1:N (default 9102; 0 picks a free port)

Standard library only; binary mode. Sluice adds three extensions to a dead-lettered event:
knativeerrordest (the URL that failed), knativeerrorcode (its last HTTP status) and
knativeerrordata (base64 of the start of its last response body).
"""
import argparse
import base64
from http.server import BaseHTTPRequestHandler, HTTPServer

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--port", type=int, default=9102)
args = args.parse_args()


class DeadLetters(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        h = self.headers
        data = base64.b64decode(h.get("ce-knativeerrordata", "")).decode(errors="replace")
        print(
            f"{self.path}: dead letter {h.get('ce-id')} ({h.get('ce-type')}): "
            f"{h.get('ce-knativeerrorcode')} from {h.get('ce-knativeerrordest')}: {data}",
            flush=True,
        )
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", args.port), DeadLetters)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
