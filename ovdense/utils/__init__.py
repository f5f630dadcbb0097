from .io import (OvdenseFileError, atomic_write, check_torch_file, safe_torch_load,
                 sha256_of_file)

__all__ = ['OvdenseFileError', 'atomic_write', 'check_torch_file', 'safe_torch_load',
           'sha256_of_file']
