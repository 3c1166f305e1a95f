"""A local stand-in for an OpenAI-compatible server (vLLM): the real server is out of reach here.

It answers GET /v1/models and POST /v1/chat/completions with JSON that fits the requested schema, fails the
first request of every ``fail_every`` with HTTP 503 (to exercise retries), and records what it received.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class OpenAIStandIn:
    def __init__(self, fail_every: int = 0):
        self.received: list[dict] = []
        self.calls = 0
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _json(self, data, code=200):
                body = json.dumps(data).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._json({"data": [{"id": "standin-model"}]})

            def do_POST(self):
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                standin.calls += 1
                if fail_every and standin.calls % fail_every == 1:
                    return self._json({"error": "busy"}, 503)
                standin.received.append(request)
                schema = request["response_format"]["json_schema"]["schema"]
                content = {"description": "stand-in concept"} if "description" in schema["properties"] else {"level": 7}
                self._json({"choices": [{"message": {"role": "assistant", "content": json.dumps(content)}}]})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> OpenAIStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
