#!/usr/bin/env python3
"""A tiny CloudEvents subscriber: prints each event it receives and answers 202 with no body.

  --port N        listen on 127.0.0.1:N (default 9099; 0 picks a free port)
  --reply NAME    answer every event with a reply: the same event, its id suffixed with ".NAME"
                  (a step of a Sequence, a subscriber whose Subscription has a reply)
  --filter TYPE   answer events of type TYPE with the event itself and others with no body
                  (the filter of a Parallel branch)

Standard library only. A reply is in the content mode of the event it answers (binary: the
received ce-* headers, Content-Type and body, with the new ce-id).
"""
import argparse
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
args.add_argument("--port", type=int, default=9099)
mode = args.add_mutually_exclusive_group()
mode.add_argument("--reply", metavar="NAME")
mode.add_argument("--filter", metavar="TYPE")
args = args.parse_args()


class Display(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        content_type = self.headers.get("content-type", "")
        if content_type.startswith("application/cloudevents+json"):  # structured mode
            event = json.loads(body)
            attrs = {k: v for k, v in event.items() if k not in ("data", "data_base64")}
            shown = json.dumps(event.get("data", event.get("data_base64")))
        else:  # binary mode
            attrs = {k[3:]: v for k, v in self.headers.items() if k.lower().startswith("ce-")}
            shown = body.decode(errors="replace")
        print(f"{self.path}: {attrs} data={shown}", flush=True)

        if args.reply or (args.filter and attrs.get("type") == args.filter):
            reply_id = f"{attrs['id']}.{args.reply}" if args.reply else attrs["id"]
            self.send_response(200)
            if content_type.startswith("application/cloudevents+json"):
                body = json.dumps({**event, "id": reply_id}).encode()
            else:
                for name, value in self.headers.items():
                    if name.lower().startswith("ce-") and name.lower() != "ce-id":
                        self.send_header(name, value)
                self.send_header("ce-id", reply_id)
            if content_type:
                self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", args.port), Display)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
