"""Which session ids more than one registry file carries (a writer bug the page shows).

A dict from every id to its head answered that for 38 bytes a head (3.7 MB at
100,000 sessions), for a question nearly every registry answers with "none".
The tally keeps the ids' hashes sorted in an array instead, 8 bytes a head, and
looks at the ids themselves only where two hashes meet.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from array import array
from collections import Counter
from collections.abc import Callable, Sequence

from src.experiments.session_head import SessionHead

_session_id: Callable[[SessionHead], str] = operator.attrgetter("session_id")


class IdTally:
    """The ids of a changing set of heads; ``duplicates`` counts the shared ones."""

    def __init__(self, heads: Sequence[SessionHead] = ()) -> None:
        hashes = sorted(map(hash, map(_session_id, heads)))
        self._hashes = array("q", hashes)
        # Session id -> how many files carry it, for ids carried more than once.
        self.duplicates: dict[str, int] = {}
        meeting = set(itertools.compress(hashes[1:], map(operator.eq, hashes, hashes[1:])))
        if meeting:  # the ids behind equal hashes: shared ids (or a rare hash collision)
            counts = Counter(h.session_id for h in heads if hash(h.session_id) in meeting)
            self.duplicates = {sid: n for sid, n in counts.items() if n > 1}

    def add(self, head: SessionHead, heads: Sequence[SessionHead]) -> None:
        """Count ``head`` in; ``heads`` are all heads, ``head`` among them."""
        session_id = head.session_id
        key = hash(session_id)
        at = bisect.bisect_left(self._hashes, key)
        if at < len(self._hashes) and self._hashes[at] == key:
            if session_id in self.duplicates:
                self.duplicates[session_id] += 1
            else:  # the first file to share it, or another id with this hash: look
                carriers = sum(1 for h in heads if h.session_id == session_id)
                if carriers > 1:
                    self.duplicates[session_id] = carriers
        self._hashes.insert(at, key)

    def remove(self, head: SessionHead) -> None:
        session_id = head.session_id
        key = hash(session_id)
        at = bisect.bisect_left(self._hashes, key)
        if at < len(self._hashes) and self._hashes[at] == key:
            del self._hashes[at]
        others = self.duplicates.pop(session_id, 1) - 1
        if others > 1:
            self.duplicates[session_id] = others
