"""The PyTorch anchor for `npm run bench:http`: the small server a user would write around the official wheel,
serving the same StyleGAN2 weights with the same work per request as our /v1/generate (a seed's z from numpy's
RandomState, mapping, synthesis with constant noise and psi 1, a PNG, base64 in JSON), at the same thread count.

usage: python3 torch_http.py <threads> <name>=<weights.safetensors> [...]
Listens on 127.0.0.1 (a free port) and prints `listening <port>` once the models are loaded and warm.
POST /v1/generate {"model": name, "seeds": [s, ...]} -> {"images": [{"seed": s, "base64": "..."}]}.
The model runs one request at a time under a lock (torch's intra-op threads are the parallelism, as in ours);
parsing and PNG encoding overlap on http.server's request threads.
"""
import base64, json, struct, sys, threading, zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import torch

from torch_ref import StyleGAN2, read_safetensors


def config_of(path):
    with open(path, "rb") as fh:
        n = struct.unpack("<Q", fh.read(8))[0]
        return json.loads(json.loads(fh.read(n))["__metadata__"]["config"])


def png(rgb):
    """RGB uint8 [h, w, 3] -> PNG bytes (zlib from the standard library; the wheel brings no image codec)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))
    chunk = lambda t, d: struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


def main():
    torch.set_num_threads(int(sys.argv[1]))
    torch.set_num_interop_threads(1)
    models = {}
    for arg in sys.argv[2:]:
        name, path = arg.split("=", 1)
        cfg = config_of(path)
        cfg.setdefault("mapping_kwargs", {"num_layers": 8})
        m = StyleGAN2(cfg)
        m.load_state_dict(read_safetensors(path), strict=True)
        models[name] = (m.eval(), cfg["z_dim"])
    lock = threading.Lock()

    def generate(name, seeds):
        model, z_dim = models[name]
        z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds]).astype(np.float32))
        with lock, torch.inference_mode():
            img = model(z)
        rgb = (img.permute(0, 2, 3, 1) * 127.5 + 128).clamp(0, 255).to(torch.uint8).numpy()
        return [{"seed": s, "base64": base64.b64encode(png(rgb[i])).decode()} for i, s in enumerate(seeds)]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
            if self.path != "/v1/generate" or body.get("model") not in models:
                out, status = b'{"error":"not_found"}', 404
            else:
                out, status = json.dumps({"images": generate(body["model"], body.get("seeds", [0]))}).encode(), 200
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    for name in models:
        generate(name, [0])
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
