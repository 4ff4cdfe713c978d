"""Training steps of the course's model families (one module per family), for :func:`i2icourse.train.fit`.

Every recipe is a :class:`~i2icourse.recipes.base.Recipe`: a class that holds the networks,
optimisers and schedules of one model family, with ``step(batch, step)`` -- one optimisation step,
the function ``fit`` calls --, ``objects()`` -- everything a checkpoint must hold, for
``fit(objects=...)`` -- and ``translate(x)`` -- the trained network's outputs.
"""
