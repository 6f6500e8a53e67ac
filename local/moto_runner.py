"""Runs moto's server on loopback for the local stack.

Started by the Rust side with this venv's interpreter. It prints one JSON line
when ready and exits when its stdin closes, so the emulator never outlives the
process that started it (Ctrl-C, a panic, or a test binary ending).
"""

import json
import logging
import os
import sys

# Without this moto answers every origin with wildcard CORS headers, which
# would hide a bucket whose own CORS rules are missing or wrong.
os.environ.setdefault("MOTO_DISABLE_GLOBAL_CORS", "true")

import moto
from moto.server import ThreadedMotoServer


def main() -> None:
    host, port = sys.argv[1], int(sys.argv[2])
    # One line per emulator request drowns the stack's own logs.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    keys = os.path.join(os.path.dirname(moto.__file__), "cognitoidp", "resources")
    print(json.dumps({"ready": True, "port": port, "cognito_keys": keys}), flush=True)
    sys.stdin.read()
    server.stop()
    os._exit(0)


if __name__ == "__main__":
    main()
