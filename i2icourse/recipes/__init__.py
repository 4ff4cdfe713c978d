"""Training steps of the course's model families (one module per family), for :func:`i2icourse.train.fit`."""
