"""The Docker Engine API versions berth speaks and the engine version it reports (a leaf module:
server.py and system.py both read it)."""

API_VERSION = "1.50"
MIN_API_VERSION = "1.24"
ENGINE_VERSION = "28.2.2"
