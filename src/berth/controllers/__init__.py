"""Reconcile loops of the control plane: the service controller (desired count, replacement,
rolling deployments, circuit breaker, DAEMON services). `service_logic.decide` is the pure
decision; `service_controller.ServiceController` is the loop that observes and applies it."""
