"""Stackwright: infrastructure as Python, delivered through git.

The public API a program uses is everything in ``__all__``::

    import stackwright as sw
    from stackwright.providers import local

A test pins this list; add to it deliberately.
"""

from stackwright.errors import ProviderError, StackwrightError
from stackwright.model.config import Config, export, get_project, get_stack
from stackwright.model.output import Input, Output, fmt, secret
from stackwright.model.policy import Violation, policy
from stackwright.model.resource import Alias, Component, Resource, ResourceOptions
from stackwright.model.stack_reference import StackReference
from stackwright.model.values import UNKNOWN

__version__ = "0.1.0"

__all__ = [
    "UNKNOWN",
    "Alias",
    "Component",
    "Config",
    "Input",
    "Output",
    "ProviderError",
    "Resource",
    "ResourceOptions",
    "StackReference",
    "StackwrightError",
    "Violation",
    "export",
    "fmt",
    "get_project",
    "get_stack",
    "policy",
    "secret",
]
