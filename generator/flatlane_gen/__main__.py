"""`python3 -m flatlane_gen ...`"""

import sys

from .cli import main

sys.exit(main())
