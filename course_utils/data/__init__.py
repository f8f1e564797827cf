"""The course's data layer: a cache, checksummed downloads with mirrors, and offline defaults.

- :mod:`course_utils.data.cache`: where data lives (``COURSE_DATA`` or the user cache dir).
- :mod:`course_utils.data.fetch`: ``fetch(name)`` by manifest entry, mirrors in order.
- :mod:`course_utils.data.prepare`: builds the offline defaults during setup.
"""
