"""Drawing helpers shared by the visualization hooks and single-image inference."""
from .palette import distinct_palette

__all__ = ['distinct_palette']
