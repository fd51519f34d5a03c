"""Learning carrier announcements: unknown recordings heard on calls are collected (``collect``),
clustered by fingerprint (``cluster``), reviewed (``review``, ``web``) and approved into the
fingerprint library (``library``); drift (``drift``, ``metrics``) says when carriers change them.
The clustering and segment logic is pure; ``store`` is the thin adapter on disk."""
