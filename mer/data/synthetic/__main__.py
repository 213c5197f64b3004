"""``python -m mer.data.synthetic out_dir=DIR [key=value ...]``: see :mod:`mer.data.synthetic.cli`."""

import sys

from mer.data.synthetic.cli import main

if __name__ == "__main__":
    sys.exit(main())
