"""The consumer of the `orders` topic, as a Knative Service: takes each record as a CloudEvent
(binary mode) on $PORT, prints it, and answers 202 with no body. It runs only while records
arrive: Sluice starts it for the first record and stops it when it has been idle."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        print("order", self.headers.get("ce-id"), self.headers.get("ce-key"), body.decode(errors="replace"), flush=True)
        self.send_response(202)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
