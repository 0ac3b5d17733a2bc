#!/usr/bin/env python3
"""A tiny CloudEvents display on 127.0.0.1:9099: prints each event it receives (binary mode)."""
from http.server import BaseHTTPRequestHandler, HTTPServer


class Display(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        attrs = {k[3:]: v for k, v in self.headers.items() if k.lower().startswith("ce-")}
        print(f"{self.path}: {attrs} data={body.decode(errors='replace')}", flush=True)
        self.send_response(202)
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", 9099), Display).serve_forever()
