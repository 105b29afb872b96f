"""Local stand-ins for Twilio and SendGrid that the official SDKs talk to unchanged."""

from .faults import Faults
from .server import Sandbox, SandboxConfig, create_sandbox

__all__ = ["Faults", "Sandbox", "SandboxConfig", "create_sandbox"]
