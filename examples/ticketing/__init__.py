"""Three services (gateway, checkout, inventory) that tag one on-sale request end to end.

Each module's ``create_app`` builds one service from what it is given (mode subscriber,
Prometheus registry, downstream URLs, tracer provider, access log); ``run`` starts all three.
"""
