"""A tiny image-classification web service on a zoo ONNX file, using only zoo.runtime.

No torch, no web framework: the standard library's http.server, onnxruntime, numpy, Pillow.

    python examples/classify_server.py digitnet.onnx --port 8000
    curl --data-binary @seven.png http://127.0.0.1:8000/classify
    {"label": "7", "probability": 0.98, "top": [...]}

Endpoints:
    GET  /health     model name, labels, input size and the onnxruntime provider in use
    POST /classify   body = one image file's bytes (PNG, JPEG, ...); ?top=N for N best classes
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from PIL import UnidentifiedImageError

from zoo.errors import ZooError
from zoo.preprocess import ImageTooLarge
from zoo.runtime import Predictor, open_image

MAX_BYTES = 20 * 1024 * 1024


def make_handler(predictor: Predictor) -> type[BaseHTTPRequestHandler]:
    lock = threading.Lock()  # one session, used by one request at a time

    class Handler(BaseHTTPRequestHandler):
        server_version = "zoo-classify/1"

        def _reply(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if urlparse(self.path).path != "/health":
                return self._reply(404, {"error": "not found: try GET /health or POST /classify"})
            card = predictor.card
            self._reply(200, {"model": card.name, "labels": list(predictor.labels), "input_size": list(card.input_size),
                              "channels": card.channels, "provider": predictor.provider,
                              "torch_imported": "torch" in sys.modules})

        def do_POST(self) -> None:  # noqa: N802
            url = urlparse(self.path)
            if url.path != "/classify":
                return self._reply(404, {"error": "not found: POST image bytes to /classify"})
            length = int(self.headers.get("Content-Length") or 0)
            if length <= 0:
                return self._reply(400, {"error": "empty body: send the image file's bytes"})
            if length > MAX_BYTES:
                return self._reply(413, {"error": f"image larger than {MAX_BYTES // 2**20} MB"})
            body = self.rfile.read(length)
            try:
                top = int(parse_qs(url.query).get("top", ["5"])[0])
                image = open_image(io.BytesIO(body))  # refuses more than ZOO_MAX_IMAGE_PIXELS from the header
                with lock:
                    prediction = predictor.predict(image)
            except ImageTooLarge as exc:
                return self._reply(413, {"error": str(exc)})
            except (UnidentifiedImageError, OSError, ValueError, ZooError) as exc:
                return self._reply(400, {"error": f"not a readable image ({type(exc).__name__})"})
            self._reply(200, prediction.to_dict(k=top))

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a zoo ONNX file (zoo export ...)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument("--providers", default="auto", help="auto, cpu or cuda")
    args = parser.parse_args(argv)
    try:
        predictor = Predictor(args.model, providers=args.providers)
    except ZooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    server = ThreadingHTTPServer((args.host, args.port), make_handler(predictor))
    host, port = server.server_address[:2]
    print(f"serving {predictor.card.name} ({predictor.provider}) on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
