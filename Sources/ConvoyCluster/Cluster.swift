// The cluster layer: wire protocol, ZeroMQ transport, coordinator and worker.
