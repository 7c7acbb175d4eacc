"""The modules of ``benchmarks/fuzz_campaign.py`` (issue #13): run that script, not this package.

Importing the package makes ``tests`` importable (the campaign reuses the fuzz tests' generators)
and keeps ``from_pretrained`` off the network, before any of its modules imports vitok.

- :mod:`fuzz.judge`: the four categories, :class:`~fuzz.judge.Tally`, running and judging one case;
- :mod:`fuzz.media`: the odd media files, tar shards and saved model the API cases read;
- :mod:`fuzz.api_env`: the API cases' shared folder and model, random tensors and values;
- :mod:`fuzz.api_model`, :mod:`fuzz.api_pretrained`, :mod:`fuzz.api_metrics`, :mod:`fuzz.api_io`,
  :mod:`fuzz.api_data`: the API case generators;
- :mod:`fuzz.api`, :mod:`fuzz.config`, :mod:`fuzz.cli`: the three parts of the campaign.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests is a package: reuse the fuzz tests' generators
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # from_pretrained on a random "org/name": never the network
