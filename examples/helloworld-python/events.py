"""An event handler for a Trigger: takes CloudEvents (binary mode) on $PORT, prints them, and
answers 202 with no body, which Knative counts as a delivered event with no reply."""
import os
from http.server import BaseHTTPRequestHandler, HTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        print("event", self.headers.get("ce-type"), self.headers.get("ce-id"), body.decode(errors="replace"), flush=True)
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
