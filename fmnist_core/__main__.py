"""python -m fmnist_core"""

import sys

from fmnist_core.cli import main

sys.exit(main())
