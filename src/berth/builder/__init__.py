"""The image builder: Dockerfile -> stages -> one image per step, with a build cache.

Public surface:
    Builder, BuildOptions      run builds (the engine/daemon wires a Builder)
    parse, plan                the pure Dockerfile front end (dockerfile.py, instructions.py)
    DockerfileError, StepFailed  errors that carry `file:line` or the RUN exit code

See README.md in this directory for the flow and the files a build uses.
"""

from berth.builder._errors import DockerfileError, StepFailed
from berth.builder.dockerfile import Dockerfile, Instruction, parse
from berth.builder.executor import BuildOptions
from berth.builder.instructions import plan
from berth.builder.service import Builder

__all__ = ["BuildOptions", "Builder", "Dockerfile", "DockerfileError", "Instruction", "StepFailed", "parse", "plan"]
