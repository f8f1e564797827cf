"""Offline defaults, prepared once during setup (``course data prepare``; make lab/test run it).

Each preparer is idempotent and quick when its data is already in the cache:
- the review sentences from vadersentiment's source distribution (lesson 06, 07);
- the CIFAR-10 stand-in the course generates itself (lesson 05);
- 20 real CIFAR-10 test images from the foolbox 3.3.4 wheel, fetched by pip (lesson 05).
"""

from __future__ import annotations

import importlib

# name -> (module, prepare function, ready function)
PREPARERS = {
    "reviews": ("course_utils.data.reviews", "prepare", "is_prepared"),
    "sentiment-lexicon": ("course_utils.data.reviews", "prepare_lexicon", "lexicon_is_prepared"),
    "cifar10-standin": ("course_utils.data.cifar_standin", "prepare", "is_prepared"),
    "cifar10-samples": ("course_utils.data.cifar", "prepare_samples", "samples_ready"),
}


def _call(name: str, which: int):
    module_name, *functions = PREPARERS[name]
    module = importlib.import_module(module_name)
    return getattr(module, functions[which])()


def offline_status() -> dict[str, bool]:
    """name -> whether that offline dataset is ready in the cache."""
    status = {}
    for name in PREPARERS:
        try:
            status[name] = bool(_call(name, 1))
        except Exception:  # noqa: BLE001 - a broken preparer reads as "not ready"
            status[name] = False
    return status


def prepare_all(names=None) -> dict[str, str]:
    """Run the preparers; return name -> 'ready' or the error text. Never stops at the first failure."""
    results = {}
    for name in names or PREPARERS:
        try:
            _call(name, 0)
            results[name] = "ready"
        except Exception as exc:  # noqa: BLE001
            results[name] = f"FAILED: {type(exc).__name__}: {exc}"
    return results
