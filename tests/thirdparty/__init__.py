"""Servers nobody here wrote, run for real on loopback: pydantic-ai's AG-UI adapter
and the npm package @copilotkit/aimock. The suite is proven against them."""
