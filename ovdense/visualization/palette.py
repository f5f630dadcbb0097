from typing import List, Tuple

import numpy as np


def distinct_palette(count: int, seed: int = 0) -> List[Tuple[int, int, int]]:
    """A fixed list of bright colours, one per class (a vocabulary of any size)."""
    rng = np.random.default_rng(seed)
    return [tuple(int(v) for v in rng.integers(40, 256, 3)) for _ in range(count)]
