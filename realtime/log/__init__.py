"""The room log: a live room's inputs and snapshots, kept so the room outlives its process.

A room is its snapshot plus the inputs since (DESIGN.md, State, persistence,
scale). ``entries`` encodes inputs, ``snapshot`` seals the room's state,
``journal`` writes a live room's log and holds its answers until they are
logged, ``recovery`` brings a room back from its log, and ``backend`` says what
a store of logs must do; ``embedded`` is the one-node store under the data dir.
"""
