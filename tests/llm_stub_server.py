"""A stand-in for the local LLM server as its own process (tests of `mmos up`'s supervisor that kill the server
by PID): an OpenAI-compatible `GET /v1/models` and `POST /v1/chat/completions` that answers each chunk with
its first sentence as a direct quote, after `--delay` seconds. Canned bodies come from tests/fakes.py.

    python tests/llm_stub_server.py --port 8765 --delay 0.3 --models qwen2.5-coder-0.5b-instruct
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fakes import chat_completion, quote_answer  # noqa: E402


def first_sentence(request: dict) -> str:
    """The first sentence (40 characters or more) of the chunk an extraction request carries."""
    passage = request["messages"][1]["content"].split('"""\n', 1)[1].rsplit('\n"""', 1)[0]
    flat = " ".join(passage.split())
    for end in (". ", "? ", "! "):
        if end in flat[40:]:
            return flat[: flat.index(end, 40) + 1]
    return flat[:120]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--models", default="")
    args = parser.parse_args()
    models = [m for m in args.models.split(",") if m]

    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path.rstrip("/") == "/v1/models":
                self._send(200, {"object": "list", "data": [{"id": m, "object": "model"} for m in models]})
            else:
                self._send(404, {"error": {"message": "not found"}})

        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if self.path.rstrip("/") != "/v1/chat/completions":
                self._send(404, {"error": {"message": "not found"}})
                return
            time.sleep(args.delay)
            self._send(200, chat_completion(quote_answer([first_sentence(body)])))

        def log_message(self, *_) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
