import sys

from smsdispatch.cli import main

sys.exit(main())
