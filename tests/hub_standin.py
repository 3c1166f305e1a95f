"""A local stand-in for the Hugging Face Hub's HTTP API (the real Hub is out of reach here: no network).

It answers the calls huggingface_hub makes for create_repo, upload_folder (every file as a "regular"
upload inside the commit payload) and hf_hub_download (HEAD then GET on /<repo>/resolve/<revision>/<path>),
and keeps the files in memory, so recprobe's real Hub code paths run end to end.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class HubStandIn:
    def __init__(self):
        self.repos: dict[str, dict[str, bytes]] = {}
        self.commits: dict[str, str] = {}
        self.requests: list[str] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, code, body=b"", headers=None):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _json(self, data, code=200):
                self._send(code, json.dumps(data).encode(), {"Content-Type": "application/json"})

            def do_POST(self):
                hub.requests.append(f"POST {self.path}")
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                parts = self.path.split("?")[0].strip("/").split("/")
                if parts[:3] == ["api", "repos", "create"]:
                    payload = json.loads(body)
                    repo = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
                    hub.repos.setdefault(repo, {})
                    return self._json({"url": f"http://{self.headers['Host']}/{repo}", "name": repo})
                if parts == ["api", "validate-yaml"]:  # model-card front matter
                    return self._json({"errors": [], "warnings": []})
                if parts[:2] == ["api", "models"] and parts[4] == "preupload":
                    files = json.loads(body)["files"]
                    return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                 for f in files]})
                if parts[:2] == ["api", "models"] and parts[4] == "commit":
                    repo = f"{parts[2]}/{parts[3]}"
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.repos[repo][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    oid = hashlib.sha1(json.dumps(sorted(hub.repos[repo])).encode() + body).hexdigest()
                    hub.commits[repo] = oid
                    return self._json({"commitUrl": f"http://{self.headers['Host']}/{repo}/commit/{oid}", "commitOid": oid})
                self._json({"error": f"stand-in does not know POST {self.path}"}, 404)

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                hub.requests.append(f"{self.command} {self.path}")
                parts = self.path.split("?")[0].strip("/").split("/")
                if len(parts) >= 5 and parts[2] == "resolve":
                    repo, name = f"{parts[0]}/{parts[1]}", "/".join(parts[4:])
                    data = hub.repos.get(repo, {}).get(name)
                    if data is None:
                        return self._send(404, b"", {"X-Error-Code": "EntryNotFound", "X-Error-Message": "not found"})
                    etag = hashlib.sha256(data).hexdigest()
                    return self._send(200, data, {"ETag": f'"{etag}"', "X-Repo-Commit": hub.commits[repo]})
                self._json({"error": f"stand-in does not know GET {self.path}"}, 404)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HubStandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
