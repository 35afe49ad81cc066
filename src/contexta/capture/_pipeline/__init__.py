"""The pipeline between the scopes and the sinks: the bounded queue, the writer thread and its
sink lanes, the outbox of refused batches, and the counters they keep."""
