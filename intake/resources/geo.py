"""ZIP code centroids and the distance between them, for "programmes near this caller".

The centroids come from the ``zipcodes`` package (U.S. ZIP codes with latitude and longitude, bundled
with the package and kept up to date by its maintainer), never from a table typed in here. A ZIP's
centroid is a point in its delivery area: distances are approximate (good to a few miles), which is
what "near" needs. Pure lookups; the package loads its data once, on the first question.
"""

from __future__ import annotations

import math
from functools import lru_cache

import zipcodes

EARTH_RADIUS_MILES = 3958.8


@lru_cache(maxsize=4096)
def zip_point(code: str | None) -> tuple[float, float] | None:
    """(latitude, longitude) of a five-digit ZIP code's centroid, or None when it is unknown."""
    if not code or len(code) != 5 or not code.isascii() or not code.isdigit():
        return None
    try:
        found = zipcodes.matching(code)
    except (ValueError, TypeError):
        return None
    for entry in found:
        try:
            return float(entry["lat"]), float(entry["long"])
        except (KeyError, TypeError, ValueError):
            continue
    return None


def known_zip(code: str | None) -> bool:
    return zip_point(code) is not None


def miles_between(a: tuple[float, float] | None, b: tuple[float, float] | None) -> float | None:
    """Great-circle distance in miles (haversine), or None when either point is unknown."""
    if a is None or b is None:
        return None
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_MILES * math.asin(math.sqrt(h))
