#!/usr/bin/env python3
"""A small guestbook: the Python web application of scone's container example.

Unchanged by scone: it reads its settings from the environment and keeps its
entries in SQLite. Sconified, its code (this directory) sits in an encrypted
volume inside the image, its database in a data volume whose key only CAS
holds, and API_TOKEN reaches it from CAS after attestation.
"""
import json
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

import guestbook_store

# A line that appears nowhere else: the tests look for it in the image's layers.
CODE_MARKER = "guestbook-code-marker-5d1f0c2a"


class Handler(BaseHTTPRequestHandler):
    store = None

    def reply(self, status, body, ctype="application/json"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/healthz":
            self.reply(200, '{"status": "ok"}')
        elif self.path == "/entries":
            self.reply(200, json.dumps(self.store.entries()))
        elif self.path == "/":
            rows = "".join("<li>%s</li>" % e["text"] for e in self.store.entries())
            self.reply(200, "<h1>Guestbook</h1><ul>%s</ul>" % rows, "text/html")
        else:
            self.reply(404, '{"error": "not found"}')

    def do_POST(self):
        token = os.environ.get("API_TOKEN", "")
        given = self.headers.get("Authorization", "")
        if self.path != "/entries":
            self.reply(404, '{"error": "not found"}')
        elif not token or given != "Bearer " + token:
            self.reply(403, '{"error": "a valid API token is required"}')
        else:
            length = min(int(self.headers.get("Content-Length", "0")), 4096)
            self.store.add(self.rfile.read(length).decode("utf-8", "replace"))
            self.reply(201, '{"status": "stored"}')

    def log_message(self, fmt, *args):
        pass


def main():
    Handler.store = guestbook_store.Store(os.environ.get("GUESTBOOK_DB", "/data/guestbook.db"))
    port = int(os.environ.get("PORT", "8080"))
    print("guestbook listening on port %d" % port, flush=True)
    HTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
