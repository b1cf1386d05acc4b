"""Registries: the seam of every kind of extension (cells, attentions, schedules, modes).

Adding one is one file holding it plus one `register` line where its kind's registry is made;
configs and the command line name it, and everything else looks it up here. Names are matched
case-insensitively; an unknown name gets an error listing the valid ones and the closest.
"""

import difflib


class Registry:
    """name -> implementation, in registration order."""

    def __init__(self, kind, plural=None):
        self.kind = kind
        self.plural = plural or kind + "s"
        self._items = {}

    def register(self, item, name=None):
        """Add `item` under `name` (default: its `name` attribute); returns item, so it also
        works as a decorator. A name may be taken only once."""
        key = str(name if name is not None else item.name).lower()
        if key in self._items and self._items[key] is not item:
            raise ValueError(f"{self.kind} {key!r} is already registered")
        self._items[key] = item
        return item

    def unregister(self, name):
        """Remove a registration (tests that register a toy extension clean up with it)."""
        self._items.pop(str(name).lower(), None)

    def __contains__(self, name):
        return str(name).lower() in self._items

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def names(self):
        return tuple(self._items)

    def items(self):
        return self._items.items()

    def __getitem__(self, name):
        key = str(name).lower()
        if key not in self._items:
            raise ValueError(self.unknown(name))
        return self._items[key]

    def unknown(self, name):
        """The message for an unknown name: the valid ones and the closest."""
        close = difflib.get_close_matches(str(name).lower(), self._items, n=1, cutoff=0.0)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return f"unknown {self.kind} {name!r}: valid {self.plural} are {', '.join(self)}{hint}"
