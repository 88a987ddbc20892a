"""berth: containers and ECS-style orchestration on your own machines."""

__version__ = "0.1.0"
