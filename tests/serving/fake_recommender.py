"""A small outside recommender for the tests, on 127.0.0.1 (a thread of the test process).

``mode`` decides the next answers: ``ok`` (the ids in ``answer``), ``garbage`` (not JSON),
``wrong_shape`` (JSON without the list), ``slow`` (sleeps ``delay_s`` first), ``error`` (500).
``stop()`` shuts it down, so its port refuses connections (``down``). Every request's headers
and JSON body are kept in ``requests``.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRecommender:
    def __init__(self) -> None:
        self.mode = "ok"
        self.answer: dict = {"recommendations": []}
        self.delay_s = 1.0
        self.requests: list[tuple[dict, dict]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"null")
                fake.requests.append((dict(self.headers), body))
                if fake.mode == "slow":
                    time.sleep(fake.delay_s)
                status, text = 200, json.dumps(fake.answer)
                if fake.mode == "garbage":
                    text = "<html>oops</html>"
                elif fake.mode == "wrong_shape":
                    text = json.dumps({"recommendations": "105"})
                elif fake.mode == "error":
                    status, text = 500, "{}"
                data = text.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller timed out and went away

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/recommend"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
