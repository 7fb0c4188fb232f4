"""The leaderboard: entries published from stores (:mod:`.entry`, :mod:`.publish`) and the
static site built from them (:mod:`.site`)."""
