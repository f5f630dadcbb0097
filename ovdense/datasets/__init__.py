from .ov_lvis import OVLVISV1Dataset

__all__ = ['OVLVISV1Dataset']
