"""Load the bundled demo market data; the same as ``cryptopredict seed``.

Run from ``backend/``: ``python scripts/seed_data.py``. Running it twice changes nothing.
"""

import sys
from pathlib import Path

# Works from a plain checkout too, where the package is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.cli import main

if __name__ == "__main__":
    main(["seed"])
