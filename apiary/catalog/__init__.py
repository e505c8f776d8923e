"""The catalog: hives, boxes and frames, kept as versioned registry states in the bucket."""

from apiary.catalog.models import FrameDef, RegistryState
from apiary.catalog.registry import Registry

__all__ = ["FrameDef", "Registry", "RegistryState"]
