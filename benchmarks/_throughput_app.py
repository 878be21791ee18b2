"""The app under load in middleware_throughput.py: one stack served by uvicorn on loopback.

python benchmarks/_throughput_app.py --stack otel+onsale --port 8000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from middleware_overhead import build_stack

#: the throughput benchmark's stacks, by the names middleware_overhead.py gives them
STACKS = {"bare": "bare", "otel": "full", "otel+onsale": "full+edge"}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stack", choices=["bare", "otel", "otel+onsale"], required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build_stack(STACKS[args.stack], access_log=False)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
